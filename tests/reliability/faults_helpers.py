"""What the fault tests share: build tenants at v1, read each tenant's state, await conditions.

A tenant's state is read from the catalog and its version table, change by change, so a
tenant caught half-way between model v1 and model v2 cannot pass for either.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from helpers import make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync
from tenant_sync.session import LOCK_NAMESPACE

#: The script that runs a sync to model v2 in a process of its own.
SYNC_SCRIPT = Path(__file__).with_name("faults_sync.py")

#: What model v2 adds to a v1 tenant, each checked on its own.
V2_CHANGES = (
    "table labels",
    "column projects.description",
    "column projects.priority",
    "type priority",
    "index ix_projects_name",
    "version v2",
)

_STATE_QUERY = sa.text(
    "SELECT n.nspname,"
    " EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid"
    "  AND c.relname = 'tasks' AND c.relkind = 'r') AS tasks,"
    " EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid"
    "  AND c.relname = 'labels' AND c.relkind = 'r') AS labels,"
    " EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    "  WHERE c.relnamespace = n.oid AND c.relname = 'projects'"
    "  AND a.attname = 'description' AND NOT a.attisdropped) AS description,"
    " EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    "  WHERE c.relnamespace = n.oid AND c.relname = 'projects'"
    "  AND a.attname = 'priority' AND NOT a.attisdropped) AS priority,"
    " EXISTS (SELECT 1 FROM pg_type t WHERE t.typnamespace = n.oid"
    "  AND t.typname = 'priority') AS priority_type,"
    " EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid"
    "  AND c.relname = 'ix_projects_name' AND c.relkind = 'i') AS ix_projects_name"
    " FROM pg_namespace n WHERE n.nspname = ANY(:names) ORDER BY 1"
)


class Fingerprints:
    """The version each model leaves in a tenant, read from reference tenants."""

    def __init__(self, v1: str, v2: str) -> None:
        self.v1 = v1
        self.v2 = v2


def url_text(url: URL) -> str:
    """The URL as a string a subprocess can connect with."""
    return url.render_as_string(hide_password=False)


def tenant_names(count: int) -> list[str]:
    """``tenant_000``, ``tenant_001``, ...: names the pattern ``tenant_%`` selects."""
    return [f"tenant_{i:03d}" for i in range(count)]


def build_v1_tenants(url: URL, names: Sequence[str]) -> Fingerprints:
    """Create the tenants at model v1, and two reference schemas that give the fingerprints.

    The references (``ref_v1``, ``ref_v2``) are outside the ``tenant_%`` pattern.
    """
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        make_schemas(engine, list(names))
        with TenantSync(url, model_v1(), tenants="tenant_%", workers=4) as ts:
            report = ts.sync_all()
            assert report.counts["migrated"] == len(names), report.failed()
            assert ts.sync_tenant("ref_v1").status == "migrated"
        with TenantSync(url, model_v2(), tenants=[]) as ts:
            assert ts.sync_tenant("ref_v2").status == "migrated"
        return Fingerprints(_version(engine, "ref_v1"), _version(engine, "ref_v2"))
    finally:
        engine.dispose()


def tenant_states(
    engine: Engine, names: Sequence[str], fingerprints: Fingerprints
) -> dict[str, str]:
    """Each tenant's state: ``v1``, ``v2``, or ``half: <the v2 changes it has>``."""
    # One snapshot for all the reads, so a commit in between cannot look like a half.
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        rows = conn.execute(_STATE_QUERY, {"names": list(names)}).all()
        versions = {name: _version_in(conn, name) for name in names}
    states: dict[str, str] = {}
    for name, tasks, *changes in rows:
        assert tasks, f"tenant {name} lost its v1 table tasks"
        present = dict(zip(V2_CHANGES, [*changes, versions[name] == fingerprints.v2], strict=True))
        if versions[name] not in (fingerprints.v1, fingerprints.v2):
            states[name] = f"half: unknown version {versions[name]!r}"
        elif all(present.values()):
            states[name] = "v2"
        elif not any(present.values()):
            states[name] = "v1"
        else:
            states[name] = "half: has " + ", ".join(c for c, ok in present.items() if ok)
    missing = set(names) - set(states)
    assert not missing, f"tenant schemas gone: {sorted(missing)}"
    return states


def half_migrated(states: dict[str, str]) -> dict[str, str]:
    """The tenants that are neither fully v1 nor fully v2."""
    return {name: state for name, state in states.items() if state not in ("v1", "v2")}


def slow_down_ddl(engine: Engine, schemas_like: str, seconds: float) -> None:
    """Make every DDL statement run in a schema matching ``schemas_like`` work ``seconds`` more.

    An event trigger (database-wide, so the test's database only) sleeps when the
    current schema, which tenant_sync sets per tenant, matches the LIKE pattern.
    """
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE FUNCTION public.slow_ddl() RETURNS event_trigger LANGUAGE plpgsql AS"
                f" $$ BEGIN IF current_schema() LIKE '{schemas_like}' THEN"
                f" PERFORM pg_sleep({seconds:f}); END IF; END $$"
            )
        )
        conn.execute(
            sa.text(
                "CREATE EVENT TRIGGER slow_ddl ON ddl_command_start"
                " EXECUTE FUNCTION public.slow_ddl()"
            )
        )


def count_tenants_with_labels(conn: sa.Connection) -> int:
    """How many tenants have committed model v2 (its ``labels`` table is visible).

    ``conn`` should be in autocommit, so each call sees the latest commits.
    """
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname LIKE 'tenant\\_%' AND c.relname = 'labels' AND c.relkind = 'r'"
            )
        ).scalar_one()
    )


def tenants_in_flight(conn: sa.Connection) -> int:
    """How many tenant transactions hold tenant_sync's advisory lock in this database now."""
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = :namespace AND objsubid = 2 AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"namespace": LOCK_NAMESPACE},
        ).scalar_one()
    )


def tenant_backend(engine: Engine, schema: str, blocked_by: int) -> int | None:
    """The pid of the session working on ``schema`` inside its transaction, if it is
    waiting for a lock ``blocked_by`` holds; else None.

    It is found by tenant_sync's advisory lock on the tenant (held only inside the
    tenant's transaction) and checked to be blocked by the given session.
    """
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory'"
                " AND l.classid = :namespace AND l.objid = hashtext(:schema)::oid"
                " AND l.objsubid = 2 AND l.granted"
                " AND :blocker = ANY(pg_blocking_pids(l.pid))"
            ),
            {"namespace": LOCK_NAMESPACE, "schema": schema, "blocker": blocked_by},
        ).scalar()


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll ``condition`` until it returns something true, at most ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def start_sync_process(url: URL, report_path: Path, workers: int = 4) -> subprocess.Popen[str]:
    """Start ``faults_sync.py``: a sync of ``tenant_%`` to model v2 in its own process."""
    return subprocess.Popen(
        [sys.executable, str(SYNC_SCRIPT), url_text(url), str(report_path), str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_process(process: subprocess.Popen[str]) -> None:
    """Kill the process if it still runs, and reap it (a no-op once it was reaped).

    A process still running here is hung (or the test failed first): before it is
    killed, it prints every thread's stack (``faults_sync.py`` dumps them on SIGUSR1),
    and the stacks go to this test's captured output.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGUSR1)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
    _out, err = process.communicate(timeout=30)
    if err:
        print(f"stderr of the sync process:\n{err}")


def clone_database(admin_engine: Engine, template: URL, label: str) -> URL:
    """A new database copied from ``template`` (which must have no open sessions)."""
    name = "ts_" + re.sub(r"[^a-z0-9]+", "_", label.lower())[-40:] + "_" + uuid.uuid4().hex[:8]
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
    return template.set(database=name)


def _version(engine: Engine, schema: str) -> str:
    with engine.connect() as conn:
        version = _version_in(conn, schema)
    assert version is not None, f"no version recorded in {schema}"
    return version


def _version_in(conn: sa.Connection, schema: str) -> str | None:
    table = conn.dialect.identifier_preparer.quote_identifier(schema) + ".tenant_sync_version"
    if conn.execute(sa.text("SELECT to_regclass(:table)"), {"table": table}).scalar() is None:
        return None
    return conn.execute(sa.text(f"SELECT max(version_num) FROM {table}")).scalar()
