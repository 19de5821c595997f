"""Signups racing two full syncs in other processes: no errors, every tenant built once.

Issue 3, point 5.  Concurrent ``sync_tenant`` signups (new tenants, some signed up
several times at once) start together with two ``sync_all`` runs in separate
processes (``load_sync_all.py``) over a few hundred empty tenant schemas.  A
``ddl_command_end`` event trigger logs every DDL command that commits, so "each
tenant's DDL is applied exactly once" is counted by PostgreSQL itself, not by the
reports.  The full size is marked slow; CI runs a bounded one.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot, make_schemas
from models import model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync

SCRIPT = Path(__file__).with_name("load_sync_all.py")

#: What one tenant's build creates, as (command tag, object identity without the schema).
BUILD = Counter(
    {
        ("CREATE TYPE", "task_status"): 1,
        ("CREATE TYPE", "priority"): 1,
        **{("CREATE TABLE", table): 1 for table in ("accounts", "projects", "tasks", "labels")},
        ("CREATE TABLE", "tenant_sync_version"): 1,
        ("CREATE TABLE", "tenant_sync_history"): 1,
    }
)

DDL_LOG = [
    "CREATE TABLE public.ddl_log (id bigserial PRIMARY KEY, schema_name text,"
    " command_tag text NOT NULL, object_type text, object_identity text,"
    " pid int NOT NULL DEFAULT pg_backend_pid())",
    "CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql"
    " SET search_path = pg_catalog AS $$ BEGIN"
    " INSERT INTO public.ddl_log (schema_name, command_tag, object_type, object_identity)"
    " SELECT schema_name, command_tag, object_type, object_identity"
    " FROM pg_catalog.pg_event_trigger_ddl_commands(); END $$",
    "CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION public.log_ddl()",
]


def signup_names(count: int) -> list[str]:
    """``count`` signups: a fifth of the names signed up three times at once, the rest once."""
    repeated = [f"tenant_new_r{i:02d}" for i in range(count // 5)]
    single = [f"tenant_new_s{i:02d}" for i in range(count - 3 * len(repeated))]
    return [name for name in repeated for _ in range(3)] + single


def start_sync_all(url: URL, tmp_path: Path, label: str, go: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        str(SCRIPT),
        url.render_as_string(hide_password=False),
        "tenant_%",
        "4",
        str(tmp_path / f"{label}.ready"),
        str(go),
        str(tmp_path / f"{label}.json"),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def await_files(paths: list[Path], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in paths):
        for process in processes:
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"sync process exited early: {stderr.decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("the sync processes were not ready within 60s")
        time.sleep(0.02)


def run_load(
    database_url: URL, engine: Engine, tmp_path: Path, tenants: int, signups: int
) -> tuple[list[SyncReport], list[TenantResult], float]:
    """Build ``tenants`` empty schemas, then race ``signups`` signups and two sync_all processes."""
    make_schemas(engine, [f"tenant_{i:04d}" for i in range(tenants)])
    with engine.begin() as conn:
        for statement in DDL_LOG:
            conn.execute(sa.text(statement))
    go = tmp_path / "go"
    processes = [start_sync_all(database_url, tmp_path, label, go) for label in ("a", "b")]
    try:
        await_files([tmp_path / "a.ready", tmp_path / "b.ready"], processes)
        names = signup_names(signups)
        start = threading.Barrier(len(names) + 1, timeout=60)
        with (
            TenantSync(database_url, model_v2(), workers=8) as ts,
            ThreadPoolExecutor(len(names)) as pool,
        ):

            def sign_up(name: str) -> TenantResult:
                start.wait()
                return ts.sync_tenant(name)

            futures = [pool.submit(sign_up, name) for name in names]
            started = time.monotonic()
            go.touch()
            start.wait()
            results = [future.result(timeout=600) for future in futures]
        reports = []
        for label, process in zip(("a", "b"), processes, strict=True):
            _, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr.decode()[-2000:]
            reports.append(SyncReport.load(tmp_path / f"{label}.json"))
        elapsed = time.monotonic() - started
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return reports, results, elapsed


def assert_each_tenant_built_exactly_once(
    engine: Engine, reports: list[SyncReport], signups: list[TenantResult], tenants: int
) -> None:
    existing = [f"tenant_{i:04d}" for i in range(tenants)]
    new = sorted({result.schema for result in signups})
    everyone = existing + new

    # No errors anywhere, and each tenant migrated by exactly one of the runs.
    for report in reports:
        assert report.ok and report.counts["skipped"] == 0, report.failed()[:5]
    assert [r.error for r in signups if r.status not in ("migrated", "unchanged")] == []
    migrated = Counter(
        r.schema for report in reports for r in report.results if r.status == "migrated"
    )
    migrated.update(r.schema for r in signups if r.status == "migrated")
    assert {name: migrated[name] for name in everyone if migrated[name] != 1} == {}
    for report in reports:
        assert set(existing) <= {r.schema for r in report.results}, "each run saw every tenant"

    # PostgreSQL's own count: each tenant's objects were created by one committed transaction.
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT command_tag, object_identity, count(*), count(DISTINCT pid)"
                " FROM public.ddl_log GROUP BY 1, 2"
            )
        ).all()
    duplicated = [row for row in rows if row[2] != 1]
    assert duplicated == [], f"DDL applied more than once: {duplicated[:10]}"
    built: dict[str, Counter[tuple[str, str]]] = {name: Counter() for name in everyone}
    for tag, identity, _, _ in rows:
        schema, _, name = identity.partition(".")
        if tag in ("CREATE TABLE", "CREATE TYPE") and not name.endswith("[]"):
            built[schema][(tag, name)] += 1
    assert {name: c for name, c in built.items() if c != BUILD} == {}
    creates = Counter(identity for tag, identity, _, _ in rows if tag == "CREATE SCHEMA")
    assert creates == Counter(new), "each new schema created once"


def assert_every_tenant_converged(database_url: URL, engine: Engine, tenants: int) -> None:
    with TenantSync(database_url, model_v2(), tenants="tenant_%", workers=4) as ts:
        check = ts.sync_all(dry_run=True)
    assert check.counts["unchanged"] == len(check.results) >= tenants, check.counts
    # And every tenant has the very same catalog, its own name aside.
    shapes: dict[str, set[tuple[str, ...]]] = {}
    for row in catalog_snapshot(engine):
        schema = str(row[0])
        if schema.startswith("tenant_"):
            shapes.setdefault(schema, set()).add(
                tuple(str(value).replace(schema, "<tenant>") for value in row[1:])
            )
    assert len(shapes) == len(check.results)
    assert len({frozenset(shape) for shape in shapes.values()}) == 1


def _load_test(
    database_url: URL, engine: Engine, tmp_path: Path, tenants: int, signups: int
) -> None:
    reports, results, elapsed = run_load(database_url, engine, tmp_path, tenants, signups)
    assert_each_tenant_built_exactly_once(engine, reports, results, tenants)
    assert_every_tenant_converged(database_url, engine, tenants)
    waits = sorted(result.duration_s for result in results)
    print(
        f"\n{tenants} tenants, {signups} signups: {elapsed:.1f}s;"
        f" runs {[round(r.duration_s, 1) for r in reports]}s,"
        f" {[r.counts['migrated'] for r in reports]} migrated;"
        f" signup median {waits[len(waits) // 2]:.2f}s, max {waits[-1]:.2f}s;"
        f" attempts > 1: {sum(r.attempts > 1 for rep in reports for r in rep.results)}"
    )


def test_signups_racing_two_sync_all_processes_build_each_tenant_once(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _load_test(database_url, engine, tmp_path, tenants=60, signups=12)


@pytest.mark.slow
def test_fifty_signups_racing_two_sync_all_processes_over_300_tenants(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _load_test(database_url, engine, tmp_path, tenants=300, signups=50)
