"""Progress: the line rendered from counts, redrawn in place, on a real terminal; on_result."""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from helpers import make_schemas
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantResult, TenantSync
from tenant_sync.output.progress import LiveProgress, ProgressLogHandler, render_progress
from tenant_sync.report import Status

TESTS = Path(__file__).resolve().parent


def test_the_line_shows_done_of_total_counts_by_status_rate_and_eta() -> None:
    line = render_progress(
        {"migrated": 30, "partial": 0, "unchanged": 10, "failed": 2}, 84, elapsed_s=21.0
    )
    assert line == "42/84 tenants (50%)  30 migrated, 10 unchanged, 2 failed  2.0/s  ETA 21s"


def test_the_line_before_the_first_result_at_the_end_and_without_a_total() -> None:
    assert render_progress({}, 1200, elapsed_s=0.3) == "0/1,200 tenants (0%)  ETA --"
    assert render_progress({"unchanged": 10}, 10, 2.0).endswith("5.0/s  done in 2.00s")
    assert render_progress({"planned": 3}, None, 1.0) == "3 tenants  3 planned  3.0/s  ETA --"
    assert render_progress({"migrated": 1}, 1000, 1.0).endswith("ETA 16m39s")


def test_the_line_is_cut_to_the_width() -> None:
    line = render_progress({"migrated": 5, "failed": 1}, 100, 3.0, width=20)
    assert len(line) == 20 and line.endswith("…")


def _result(schema: str, status: Status = "migrated") -> TenantResult:
    return TenantResult(schema, status)


def test_the_live_line_is_redrawn_in_place_at_most_so_often_and_cleared() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = LiveProgress(stream, min_interval_s=1.0, clock=lambda: now[0])
    progress.start(3)
    progress(_result("a"))  # too soon after the first draw
    now[0] += 2.0
    progress(_result("b", "failed"))
    progress(_result("c"))  # the last one is always drawn
    progress.clear()
    frames = stream.getvalue().split("\r")
    assert frames[1:] == [
        "0/3 tenants (0%)  ETA --\x1b[K",
        "2/3 tenants (66%)  1 migrated, 1 failed  1.0/s  ETA 1s\x1b[K",
        "3/3 tenants (100%)  2 migrated, 1 failed  1.5/s  done in 2.00s\x1b[K",
        "\x1b[K",
    ]


def test_log_records_are_printed_above_the_line() -> None:
    stream = io.StringIO()
    progress = LiveProgress(stream, clock=lambda: 0.0)
    handler = ProgressLogHandler(progress)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tenant_sync.test_progress")
    logger.addHandler(handler)
    try:
        progress.start(2)
        logger.warning("tenant a: withheld")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == (
        "\r0/2 tenants (0%)  ETA --\x1b[K"
        "\r\x1b[K"  # erased
        "WARNING tenant a: withheld\n"
        "\r0/2 tenants (0%)  ETA --\x1b[K"  # drawn again below it
    )


def test_on_result_gets_each_tenant_result_as_it_finishes(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["a", "b", "c"])
    seen: list[TenantResult] = []
    with TenantSync(database_url, model_v1(), on_result=seen.append) as ts:
        report = ts.sync_all()
    assert sorted(seen, key=lambda r: r.schema) == report.results
    assert {r.status for r in seen} == {"migrated"}


def _run_on_a_terminal(args: list[str], env: dict[str, str], timeout_s: float = 60) -> str:
    """Run a command with stdout and stderr on a pseudo-terminal; return what it wrote."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env, cwd=TESTS
        )
    finally:
        os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        process.kill()
        process.wait(10)
        os.close(controller)
    return output.decode(errors="replace")


def test_sync_on_a_terminal_shows_the_live_progress_line(database_url: URL, engine: Engine) -> None:
    make_schemas(engine, ["tenant_a", "tenant_b"])
    env = {k: v for k, v in os.environ.items() if k != "TENANT_SYNC_DATABASE_URL"}
    env["COLUMNS"] = "200"
    url = database_url.render_as_string(hide_password=False)
    args = [sys.executable, "-m", "tenant_sync.cli", "sync", "--url", url]
    output = _run_on_a_terminal([*args, "--model", "cli_model:metadata_v1"], env)
    assert "\r0/2 tenants (0%)  ETA --\x1b[K" in output
    assert "2/2 tenants (100%)  2 migrated" in output
    assert "Sync of 2 tenants" in output
    assert " INFO " not in output, "on a terminal, the line replaces the INFO log lines"
