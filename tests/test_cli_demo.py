"""``tenant-sync demo``: on an embedded server it starts and stops itself, or on a given one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import server_url
from sqlalchemy.engine import Engine

from tenant_sync.demo.embedded import embedded_available

# The summary's first line, its header (database, model, versions), then the counts.
DEMO_SUMMARY = re.compile(
    r"^Sync of 5 tenants in .*\n  database .*\n  model     tenant_sync\.demo:demo_model\(2\) .*\n"
    r"  versions  tenant_sync .*\n  migrated +5$",
    re.MULTILINE,
)


def run_demo_command(
    *args: str, cwd: Path, command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the demo with no TENANT_SYNC_DATABASE_URL in the environment."""
    env = {k: v for k, v in os.environ.items() if k != "TENANT_SYNC_DATABASE_URL"}
    return subprocess.run(
        [*(command or [sys.executable, "-m", "tenant_sync.cli"]), "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_script() -> list[str]:
    """The ``tenant-sync`` entry point installed next to this Python, else ``-m``."""
    script = Path(sys.executable).parent / "tenant-sync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tenant_sync.cli"]


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not embedded_available(), reason="the tenant_sync[embedded] extra is missing")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_demo_on_the_embedded_server_prints_the_summary_writes_html_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    result = run_demo_command(cwd=tmp_path, command=console_script())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Plan (dry run) to model v2, first tenant (acme):" in result.stdout
    assert "  add column projects.description TEXT" in result.stdout
    assert DEMO_SUMMARY.search(result.stdout), result.stdout
    html = tmp_path / "demo-report.html"
    assert html.exists() and "acme" in html.read_text()
    started = re.search(
        r"^Embedded PostgreSQL started \(pid (\d+)\) in (\S+)$", result.stdout, re.M
    )
    assert started, result.stdout
    pid, directory = int(started.group(1)), started.group(2)
    assert f"Embedded PostgreSQL stopped (pid {pid})" in result.stdout
    assert not process_alive(pid), "the embedded server outlived the demo"
    assert processes_mentioning(directory) == [], "a server process still runs in its directory"
    assert not Path(directory).exists()


def test_demo_with_a_url_uses_that_server_and_drops_its_database(
    admin_engine: Engine, tmp_path: Path
) -> None:
    def demo_databases() -> set[str]:
        with admin_engine.connect() as conn:
            query = "SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_sync\\_demo\\_%'"
            return set(conn.execute(sa.text(query)).scalars())

    before = demo_databases()
    html = tmp_path / "out" / "demo.html"
    url = server_url().render_as_string(hide_password=False)

    result = run_demo_command("--url", url, "--html", str(html), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert DEMO_SUMMARY.search(result.stdout), result.stdout
    assert "Embedded" not in result.stdout
    assert html.exists() and not (tmp_path / "demo-report.html").exists()
    assert demo_databases() <= before


def test_demo_without_url_or_embedded_extra_is_one_line_error(tmp_path: Path) -> None:
    # As on a machine without the extra: the wheel's package name is not found.
    code = (
        "import sys; from tenant_sync.demo import embedded;"
        " embedded._WHEEL_PACKAGE = 'tenant_sync_no_such_wheel';"
        " from tenant_sync.cli import main; sys.exit(main(['demo']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TENANT_SYNC_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("tenant-sync: error: ") and "tenant_sync[embedded]" in line
    assert "--url" in line
