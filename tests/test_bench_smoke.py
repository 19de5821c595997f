"""The benchmark runs end to end: 3 tenants, one repeat, build and no-op, in a fresh database."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from conftest import create_database, drop_database
from sqlalchemy.engine import URL, Engine

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"plain", "tenant_sync", "floor_serial", "floor_parallel"}


def test_bench_smoke_run_writes_json_and_markdown(admin_engine: Engine, tmp_path: Path) -> None:
    url = create_database(admin_engine, "bench_smoke")
    out = tmp_path / "smoke.json"
    try:
        _run_bench(
            "bench/run.py",
            ["--tenants", "3", "--scenarios", "build", "noop", "--repeat", "1"],
            url,
            out,
        )
        left = _databases_named_after(admin_engine, url)
    finally:
        drop_database(admin_engine, url)

    assert left == [], "the benchmark drops its template databases"
    doc = json.loads(out.read_text())
    assert {"command", "machine", "settings", "results", "notes"} <= doc.keys()
    assert doc["machine"]["cores"] > 0 and doc["machine"]["postgresql"]
    assert {"sqlalchemy", "alembic"} <= doc["machine"]["versions"].keys()
    assert [(r["tenants"], r["scenario"]) for r in doc["results"]] == [(3, "build"), (3, "noop")]
    for entry in doc["results"]:
        assert entry["variants"].keys() == VARIANTS
        for name, variant in entry["variants"].items():
            assert variant["seconds"] > 0, name
            assert variant["ms_per_tenant"] > 0, name
            assert variant["peak_rss_mb"] > 0, name
            assert variant["verified"], f"{entry['scenario']} {name}: tenants not at the model"
        assert entry["ratios"]["b_over_a"] > 0 and entry["ratios"]["b_over_c"] > 0
    build, noop = doc["results"]
    assert build["variants"]["tenant_sync"]["statuses"]["migrated"] == 3
    assert noop["variants"]["tenant_sync"]["statuses"]["unchanged"] == 3
    assert noop["variants"]["plain"]["operations"] == 0
    markdown = out.with_suffix(".md").read_text()
    assert "| 3 | build |" in markdown and "| 3 | noop |" in markdown


def test_signup_bench_smoke_run_times_every_signup(admin_engine: Engine, tmp_path: Path) -> None:
    url = create_database(admin_engine, "bench_signup_smoke")
    out = tmp_path / "signup.json"
    try:
        _run_bench(
            "bench/signup.py", ["--tenants", "3", "--signups", "3", "--repeat", "1"], url, out
        )
        left = _databases_named_after(admin_engine, url)
    finally:
        drop_database(admin_engine, url)

    assert left == [], "the benchmark drops its template database"

    doc = json.loads(out.read_text())
    assert {run: len(runs[0]) for run, runs in doc["runs_s"].items()} == {
        "plain": 3,
        "tenant_sync": 3,
        "floor": 3,
    }
    summary = doc["summary"]
    assert all(summary[v]["first_ms"] > 0 and summary[v]["later_ms"] > 0 for v in doc["runs_s"])
    assert summary["ratios"]["b_over_a"] > 0 and summary["ratios"]["b_over_c"] > 0
    assert "| (b) tenant_sync |" in out.with_suffix(".md").read_text()


def test_fleet_bench_smoke_run_compares_a_fleet_with_one_database(
    admin_engine: Engine, tmp_path: Path
) -> None:
    prefix = f"bench_fleet_smoke_{uuid.uuid4().hex[:8]}"
    out = tmp_path / "fleet.json"
    server = admin_engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "bench/fleet.py", "--tenants", "3", "--databases", "2", "--repeat", "1",
         "--url", server, "--prefix", prefix, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    with admin_engine.connect() as conn:
        left = (
            conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": f"{prefix}%"},
            )
            .scalars()
            .all()
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert left == [], "the benchmark drops its databases"
    runs = json.loads(out.read_text())["runs"]
    assert all(len(runs[s][v]) == 1 for s in ("change", "noop") for v in runs[s]), runs
    assert "| noop | fleet |" in out.with_suffix(".md").read_text()


def _run_bench(script: str, options: list[str], url: URL, out: Path) -> None:
    """Run a benchmark script on database ``url``, writing to ``out``; fail on its error."""
    database = ["--database-url", url.render_as_string(hide_password=False)]
    done = subprocess.run(
        [sys.executable, script, *options, *database, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _databases_named_after(admin_engine: Engine, url: URL) -> list[str]:
    """Databases whose names start with ``url``'s database name and an underscore."""
    with admin_engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                {"prefix": f"{url.database}\\_%"},
            ).scalars()
        )
