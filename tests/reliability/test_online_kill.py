"""The online path killed with SIGKILL at random moments of its second phase.

A run whose every table takes the online path is killed, the coordinator with
``kill -9`` and its server sessions with ``pg_terminate_backend`` (a crash of the
machine that runs it: a build in flight stops too), at a random moment after the first
``CONCURRENTLY`` statement starts.  Whatever it left (an invalid index, a constraint not
validated, a helper CHECK), a rerun finishes every tenant from the catalog: no invalid
index, no constraint unvalidated, every tenant equal to a schema built by
``create_all``, and every row still there.  The seed is printed (set
TENANT_SYNC_FAULT_SEED to replay).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import drop_database
from faults_helpers import clone_database, stop_process, url_text, wait_until
from helpers import build_with_create_all, differences, make_schemas
from online_models import events_model, load_events, online_leftovers
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync

SYNC_SCRIPT = Path(__file__).with_name("online_sync.py")
TENANTS = [f"tenant_{i}" for i in range(3)]
ROWS = 150_000


def test_kill_9_in_phase_two_and_a_rerun_finishes_every_tenant(
    admin_engine: Engine, database_url: URL, tmp_path: Path
) -> None:
    _kill_trials(admin_engine, database_url, tmp_path, trials=3)


@pytest.mark.slow
def test_kill_9_in_phase_two_20_trials(
    admin_engine: Engine, database_url: URL, tmp_path: Path
) -> None:
    _kill_trials(admin_engine, database_url, tmp_path, trials=20)


def _kill_trials(admin_engine: Engine, template: URL, tmp_path: Path, trials: int) -> None:
    seed = int(os.environ.get("TENANT_SYNC_FAULT_SEED", time.time_ns() % 2**32))
    print(f"online kill -9 seed: {seed}")
    rng = random.Random(seed)
    _build_template(template)
    left: list[list[str]] = []
    for trial in range(trials):
        url = clone_database(admin_engine, template, f"online_kill_{trial}")
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            left.append(_kill_once(url, engine, tmp_path / f"report_{trial}.json", rng))
            _rerun_finishes(url, engine)
        finally:
            engine.dispose()
            drop_database(admin_engine, url)
    print("left by the kills:", left)


def _build_template(url: URL) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        make_schemas(engine, TENANTS)
        with TenantSync(url, events_model(False), tenants="tenant_%") as ts:
            assert ts.sync_all().ok
        with engine.begin() as conn:
            for schema in TENANTS:
                load_events(conn, schema, ROWS)
        build_with_create_all(engine, events_model(True), "reference")
    finally:
        engine.dispose()


def _kill_once(url: URL, engine: Engine, report: Path, rng: random.Random) -> list[str]:
    """Start the run, kill it a random moment after its phase 2 starts; what it left."""
    process = subprocess.Popen(
        [sys.executable, str(SYNC_SCRIPT), url_text(url), str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _phase_two_started(engine) or process.poll() is not None, 60, "phase 2")
        time.sleep(rng.uniform(0.0, 0.3))  # phase 2 takes about 0.3 s here
        process.kill()
        _terminate_sessions(engine)
    finally:
        stop_process(process)
    with engine.connect() as conn:
        return [
            f"{schema}: {what}" for schema in TENANTS for what in online_leftovers(conn, schema)
        ]


def _phase_two_started(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'CREATE %%INDEX CONCURRENTLY%%'"
            ).scalar_one()
        )


def _terminate_sessions(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.commit()


def _rerun_finishes(url: URL, engine: Engine) -> None:
    with TenantSync(url, events_model(True), tenants="tenant_%", online="always") as ts:
        report = ts.sync_all()
        assert report.ok and not report.counts["partial"], [
            (result.schema, result.status, result.error) for result in report.results
        ]
        assert ts.sync_all().counts["unchanged"] == len(TENANTS)
    with engine.connect() as conn:
        for schema in TENANTS:
            assert online_leftovers(conn, schema) == []
            count = conn.exec_driver_sql(f'SELECT count(*) FROM "{schema}".events').scalar_one()
            assert count == ROWS
    for schema in TENANTS:
        assert differences(engine, schema, "reference") == {}
