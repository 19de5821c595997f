"""A tenant's connection killed server-side, or its transaction chosen as a deadlock victim.

Mid-tenant is made deterministic: a blocker session holds a lock the tenant needs, so
the tenant waits inside its transaction (holding its advisory lock) until the fault hits.
With ``retries=0`` that tenant fails cleanly, rolled back whole, and the others go on;
with retries it succeeds on its second attempt, and the report says so.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from faults_helpers import (
    build_v1_tenants,
    half_migrated,
    tenant_backend,
    tenant_names,
    tenant_states,
    wait_until,
)
from models import model_v2
from sqlalchemy.engine import URL, Connection, Engine

from tenant_sync import SyncReport, TenantSync
from tenant_sync.session import LOCK_NAMESPACE

NAMES = tenant_names(6)
VICTIM = NAMES[2]


def _terminate(engine: Engine, blocker: Connection, pid: int) -> str:
    with engine.connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    return "connection"


def _deadlock(engine: Engine, blocker: Connection, pid: int) -> str:
    # The tenant holds its advisory lock and waits for the blocker's table lock; now the
    # blocker waits for the advisory lock.  The tenant's deadlock check (deadlock_timeout,
    # 1 s) runs first and aborts the tenant; the blocker's is set far later.
    blocker.execute(sa.text("SET LOCAL deadlock_timeout = '20s'"))
    blocker.execute(sa.text("SET LOCAL lock_timeout = '15s'"))
    blocker.execute(
        sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:schema))"),
        {"namespace": LOCK_NAMESPACE, "schema": VICTIM},
    )
    return "deadlock detected"


FAULTS = {"terminated": _terminate, "deadlock": _deadlock}


def _sync_with_fault(
    database_url: URL, engine: Engine, fault: str, retries: int
) -> tuple[TenantSync, SyncReport, str]:
    """Sync to v2 while ``fault`` hits the victim, which waits for a blocker's table lock."""
    ts = TenantSync(
        database_url,
        model_v2(),
        tenants="tenant_%",
        workers=2,
        lock_timeout=10,
        retries=retries,
        retry_backoff=0.1,
    )
    with engine.connect() as blocker, ThreadPoolExecutor(1) as runner:
        blocker.execute(sa.text(f"LOCK TABLE {VICTIM}.projects IN ACCESS EXCLUSIVE MODE"))
        blocker_pid = blocker.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        running = runner.submit(ts.sync_all)
        try:
            pid = wait_until(
                lambda: tenant_backend(engine, VICTIM, blocked_by=blocker_pid),
                timeout_s=30,
                what=f"{VICTIM} to wait for the blocker inside its transaction",
            )
            assert isinstance(pid, int)
            expected_error = FAULTS[fault](engine, blocker, pid)
        finally:
            blocker.rollback()
        report = running.result(timeout=60)
    for result in report.results:
        print(f"  {result.schema}: {result.status}, attempts: {result.attempts}")
    return ts, report, expected_error


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_mid_tenant_fails_that_tenant_cleanly_and_the_others_go_on(
    database_url: URL, engine: Engine, fault: str
) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)

    ts, report, expected_error = _sync_with_fault(database_url, engine, fault, retries=0)
    with ts:
        victim = report.get(VICTIM)
        assert victim is not None and victim.status == "failed"
        assert victim.error is not None and expected_error in victim.error.lower(), victim.error
        assert victim.attempts == 1
        assert report.counts["migrated"] == len(NAMES) - 1, report.counts
        states = tenant_states(engine, NAMES, fingerprints)
        assert states[VICTIM] == "v1", "the victim is rolled back whole"
        assert half_migrated(states) == {}
        assert {states[name] for name in NAMES if name != VICTIM} == {"v2"}

        rerun = ts.sync_all()  # the pool got over the dead connection
    assert rerun.get(VICTIM).status == "migrated"  # type: ignore[union-attr]
    assert rerun.counts["unchanged"] == len(NAMES) - 1, rerun.counts
    assert set(tenant_states(engine, NAMES, fingerprints).values()) == {"v2"}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_mid_tenant_is_retried_and_the_report_counts_the_attempts(
    database_url: URL, engine: Engine, fault: str
) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)

    ts, report, _ = _sync_with_fault(database_url, engine, fault, retries=2)
    ts.close()
    assert report.ok, report.failed()
    attempts = {row["schema"]: row["attempts"] for row in report.to_dict()["results"]}
    assert attempts == {name: 2 if name == VICTIM else 1 for name in NAMES}
    assert report.counts["migrated"] == len(NAMES)
    assert set(tenant_states(engine, NAMES, fingerprints).values()) == {"v2"}


def test_errors_that_are_not_transient_are_not_retried(database_url: URL, engine: Engine) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)
    # A view where v2 wants a table: "create table labels" fails the same way every time.
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW {VICTIM}.labels AS SELECT 1 AS id"))

    with TenantSync(database_url, model_v2(), tenants="tenant_%", retries=3) as ts:
        report = ts.sync_all()
    victim = report.get(VICTIM)
    assert victim is not None and victim.status == "failed" and victim.attempts == 1
    assert victim.error is not None and "already exists" in victim.error
    states = tenant_states(engine, NAMES, fingerprints)
    assert states.pop(VICTIM) == "v1"
    assert set(states.values()) == {"v2"}


def test_a_terminated_tenant_error_gives_the_server_reason(
    database_url: URL, engine: Engine
) -> None:
    build_v1_tenants(database_url, NAMES)
    ts, report, _ = _sync_with_fault(database_url, engine, "terminated", retries=0)
    ts.close()
    victim = report.get(VICTIM)
    assert victim is not None and victim.error is not None
    assert "terminating connection due to administrator command" in victim.error, victim.error
