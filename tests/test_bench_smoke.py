"""The benchmark runs end to end: 3 tenants, one repeat, build and no-op, in a fresh database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import create_database, drop_database
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"plain", "tenant_sync", "floor_serial", "floor_parallel"}


def test_bench_smoke_run_writes_json_and_markdown(admin_engine: Engine, tmp_path: Path) -> None:
    url = create_database(admin_engine, "bench_smoke")
    out = tmp_path / "smoke.json"
    try:
        done = subprocess.run(
            [
                sys.executable,
                "bench/run.py",
                "--tenants",
                "3",
                "--scenarios",
                "build",
                "noop",
                "--repeat",
                "1",
                "--database-url",
                url.render_as_string(hide_password=False),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        with admin_engine.connect() as conn:
            left = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
                {"prefix": f"{url.database}\\_%"},
            ).all()
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
