"""One bad tenant never blocks or corrupts the others."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from helpers import catalog_snapshot, columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def test_failing_tenant_is_rolled_back_whole_while_the_others_migrate(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["good_1", "bad", "good_2"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    # A view where v2 wants a table: "create table labels" fails in this tenant only,
    # after its other changes (columns, index) have already run in its transaction.
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW bad.labels AS SELECT 1 AS id"))
    before = columns(engine, "bad", "projects")

    with TenantSync(database_url, model_v2(), workers=3) as ts:
        report = ts.sync_all()

    assert report.counts["migrated"] == 2 and report.counts["failed"] == 1 and not report.ok
    bad = report.get("bad")
    assert bad is not None and bad.error is not None
    assert "create table labels" in bad.error and "already exists" in bad.error
    assert columns(engine, "bad", "projects") == before, "the bad tenant is untouched"
    for good in ("good_1", "good_2"):
        assert "description" in columns(engine, good, "projects")
        assert "labels" in tables(engine, good)


def test_locked_table_fails_its_tenant_within_lock_timeout_others_go_on_and_a_retry_works(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["free", "locked"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    snapshot = catalog_snapshot(engine)

    with TenantSync(database_url, model_v2(), lock_timeout=0.3, retries=0) as ts:
        with engine.connect() as blocker:
            blocker.execute(sa.text("LOCK TABLE locked.projects IN ACCESS EXCLUSIVE MODE"))
            report = ts.sync_all()
            blocker.rollback()
        locked = report.get("locked")
        assert locked is not None and locked.status == "failed"
        assert locked.error is not None and "lock_timeout" in locked.error
        assert locked.duration_s < 10, "bounded by lock_timeout, not a hang"
        assert report.get("free").status == "migrated"  # type: ignore[union-attr]
        assert catalog_snapshot(engine) != snapshot
        assert "description" not in columns(engine, "locked", "projects")

        retry = ts.sync_all()
    assert retry.get("locked").status == "migrated"  # type: ignore[union-attr]
    assert retry.get("free").status == "unchanged"  # type: ignore[union-attr]
    assert "description" in columns(engine, "locked", "projects")


def test_transient_lock_timeout_is_retried_and_the_attempts_are_reported(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["busy"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    retrying = threading.Event()
    handler = _EventOnMessage("retrying", retrying)
    logger = logging.getLogger("tenant_sync")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    blocker = engine.connect()
    blocker.execute(sa.text("LOCK TABLE busy.projects IN ACCESS EXCLUSIVE MODE"))

    def release_once_retrying() -> None:
        retrying.wait(timeout=30)
        blocker.rollback()
        blocker.close()

    releaser = threading.Thread(target=release_once_retrying)
    releaser.start()
    try:
        with TenantSync(
            database_url, model_v2(), lock_timeout=0.2, retries=3, retry_backoff=0.5
        ) as ts:
            result = ts.sync_tenant("busy", create=False)
    finally:
        releaser.join()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert retrying.is_set()
    assert result.status == "migrated", result.error
    assert result.attempts == 2


class _EventOnMessage(logging.Handler):
    def __init__(self, text: str, event: threading.Event) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()
