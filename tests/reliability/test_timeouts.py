"""statement_timeout beside lock_timeout: each bounds its own kind of wait, and is named.

A tenant that exceeds either fails with the timeout named in its error, rolled back
whole, while the other tenants migrate.  A lock timeout is transient (retried); a
statement timeout is not.  Both are set transaction-locally, so neither outlives the
tenant's transaction on a pooled connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from faults_helpers import (
    Fingerprints,
    build_v1_tenants,
    slow_down_ddl,
    tenant_names,
    tenant_states,
)
from models import model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantResult, TenantSync

NAMES = tenant_names(4)
SLOW = NAMES[1]


@contextmanager
def _table_locked(engine: Engine, table: str) -> Iterator[None]:
    with engine.connect() as blocker:
        blocker.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            blocker.rollback()


def _slow_tenant_result(
    database_url: URL, engine: Engine, fingerprints: Fingerprints, **options: float
) -> TenantResult:
    with TenantSync(database_url, model_v2(), tenants="tenant_%", workers=2, **options) as ts:
        report = ts.sync_all()
    slow = report.get(SLOW)
    assert slow is not None and slow.status == "failed", slow
    assert report.counts["migrated"] == len(NAMES) - 1, report.counts
    states = tenant_states(engine, NAMES, fingerprints)
    assert states.pop(SLOW) == "v1", "the slow tenant is rolled back whole"
    assert set(states.values()) == {"v2"}
    return slow


def test_a_slow_statement_fails_its_tenant_naming_statement_timeout(
    database_url: URL, engine: Engine
) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)
    # DDL in the slow tenant takes 5 s of work (not a lock wait).
    slow_down_ddl(engine, SLOW, 5)

    slow = _slow_tenant_result(
        database_url, engine, fingerprints, statement_timeout=0.5, lock_timeout=10, retries=2
    )
    assert slow.error is not None
    assert "statement timeout" in slow.error and "statement_timeout" in slow.error, slow.error
    assert "lock_timeout" not in slow.error
    assert slow.attempts == 1, "a statement timeout is not transient: no retry"
    assert slow.duration_s < 4, "bounded by statement_timeout, not by the 5 s of work"


def test_a_lock_wait_longer_than_statement_timeout_names_statement_timeout(
    database_url: URL, engine: Engine
) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)
    with _table_locked(engine, f"{SLOW}.projects"):
        slow = _slow_tenant_result(
            database_url, engine, fingerprints, statement_timeout=0.3, lock_timeout=10, retries=0
        )
    assert slow.error is not None and "statement_timeout" in slow.error, slow.error
    assert "lock_timeout" not in slow.error
    assert slow.duration_s < 5


def test_a_lock_wait_longer_than_lock_timeout_names_lock_timeout_and_is_retried(
    database_url: URL, engine: Engine
) -> None:
    fingerprints = build_v1_tenants(database_url, NAMES)
    with _table_locked(engine, f"{SLOW}.projects"):
        slow = _slow_tenant_result(
            database_url,
            engine,
            fingerprints,
            statement_timeout=10,
            lock_timeout=0.3,
            retries=1,
            retry_backoff=0.05,
        )
    assert slow.error is not None
    assert "lock timeout" in slow.error and "lock_timeout" in slow.error, slow.error
    assert "statement_timeout" not in slow.error
    assert slow.attempts == 2, "a lock timeout is transient: retried once"
    assert slow.duration_s < 5


def test_the_timeouts_end_with_the_tenant_transaction(database_url: URL) -> None:
    build_v1_tenants(database_url, NAMES)
    # One pooled connection, used by the sync and then by the application.
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            before = conn.execute(
                sa.text(
                    "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
            ).one()
        with TenantSync(
            engine,
            model_v2(),
            tenants="tenant_%",
            workers=1,
            statement_timeout=0.5,
            lock_timeout=0.2,
        ) as ts:
            assert ts.sync_all().ok
        with engine.connect() as conn:
            after = conn.execute(
                sa.text(
                    "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
            ).one()
            conn.execute(sa.text("SELECT pg_sleep(0.7)"))  # longer than statement_timeout
    finally:
        engine.dispose()
    assert tuple(after) == tuple(before)
