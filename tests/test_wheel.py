"""The built wheel carries what the package reads at run time: its SQL, page, style and script.

The checkout is left out of the way: the wheel is installed into a directory of its
own and used from a Python started without ``site`` (so the editable install's finder
is not loaded), with only the wheel and the dependencies on its path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import make_schemas
from sqlalchemy.engine import URL, Engine

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# Run from the installed wheel: build two tenants at v1, sync them to v2 (the catalog
# pass, one comparison, a round trip each with its recheck), sync again (the pass
# alone), render the HTML report.
_SCRIPT = """
import json, sys
import tenant_sync
from tenant_sync import TenantSync
from tenant_sync.output.html import render_html
from models import model_v1, model_v2

url = sys.argv[1]
with TenantSync(url, model_v1()) as ts:
    built = [ts.sync_tenant(name, create=False) for name in ("wheel_a", "wheel_b")]
with TenantSync(url, model_v2()) as ts:
    changed = ts.sync_all()
    again = ts.sync_all()
page = render_html(changed)
print(json.dumps({
    "file": tenant_sync.__file__,
    "version": tenant_sync.__version__,
    "built": [r.status for r in built],
    "changed": [(r.status, r.attempts) for r in changed.results],
    "again": [(r.status, r.attempts) for r in again.results],
    "page_has_style": "--failed-bg" in page,
    "page_has_script": "window.tenantReport" in page,
}))
"""


def _pyproject_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version = "([^"]+)"', text, re.M)
    assert found is not None
    return found.group(1)


def _pip(*args: str) -> None:
    """Run pip offline; on failure, its output is the assertion's message."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-deps", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout (offline: the test environment's setuptools)."""
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-build-isolation", "--wheel-dir", str(out), str(ROOT))
    (found,) = out.glob("tenant_sync-*.whl")
    return found


def test_wheel_holds_the_sql_and_report_assets(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "tenant_sync/py.typed",
        "tenant_sync/fastpath/shape_pass.sql",
        "tenant_sync/fastpath/stamp.sql",
        "tenant_sync/output/assets/report.html",
        "tenant_sync/output/assets/report.css",
        "tenant_sync/output/assets/report.js",
    }
    assert expected <= names, sorted(expected - names)


def test_installed_wheel_syncs_and_renders_a_report(
    wheel: Path, tmp_path: Path, database_url: URL, engine: Engine
) -> None:
    target = tmp_path / "installed"
    _pip("install", "--no-index", "--target", str(target), str(wheel))
    make_schemas(engine, ["wheel_a", "wheel_b"])
    path = os.pathsep.join([str(target), str(TESTS), sysconfig.get_paths()["purelib"]])
    run = subprocess.run(
        [sys.executable, "-S", "-c", _SCRIPT, database_url.render_as_string(hide_password=False)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["file"].startswith(str(target)), "tenant_sync came from the wheel"
    assert seen["version"] == _pyproject_version()
    assert seen["built"] == ["migrated", "migrated"]
    assert seen["changed"] == [["migrated", 1], ["migrated", 1]]
    assert seen["again"] == [["unchanged", 0], ["unchanged", 0]], "settled by the catalog pass"
    assert seen["page_has_style"] and seen["page_has_script"]
