"""Cancellation: ``cancel()`` from another thread, and Ctrl-C (KeyboardInterrupt).

No new tenant starts; tenants in flight finish (or roll back); the rest are reported
``skipped``, untouched; the call returns (or re-raises Ctrl-C) promptly, with a report
of every tenant.  Tenants are slowed to about 0.25 s each (an event trigger sleeps on
their DDL), so that a run of 30 tenants with two workers is still going when it is
cancelled after its third result.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from faults_helpers import (
    Fingerprints,
    build_v1_tenants,
    count_tenants_with_labels,
    half_migrated,
    slow_down_ddl,
    start_sync_process,
    stop_process,
    tenant_names,
    tenant_states,
    wait_until,
)
from models import model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync

NAMES = tenant_names(30)
WORKERS = 2
#: Results gathered before the run is cancelled.
CANCEL_AFTER = 3
#: At most this many tenants end migrated: those done, those in flight, and a margin
#: for results that finish while the cancellation is on its way.
MOST_MIGRATED = CANCEL_AFTER + 2 * WORKERS


def _build(database_url: URL, engine: Engine) -> Fingerprints:
    fingerprints = build_v1_tenants(database_url, NAMES)
    slow_down_ddl(engine, "tenant\\_%", 0.05)
    return fingerprints


def _check_cancelled_report(report: SyncReport, engine: Engine, fingerprints: Fingerprints) -> None:
    """Every tenant reported; none failed; skipped ones untouched, migrated ones whole."""
    assert report.cancelled
    assert [result.schema for result in report.results] == NAMES
    counts = report.counts
    assert counts["failed"] == 0 and counts["unchanged"] == 0, counts
    assert CANCEL_AFTER <= counts["migrated"] <= MOST_MIGRATED, counts
    assert counts["skipped"] == len(NAMES) - counts["migrated"], counts
    for result in report.results:
        if result.status == "skipped":
            assert result.attempts == 0 and result.error is not None
            assert "cancel" in result.error, result.error
    states = tenant_states(engine, NAMES, fingerprints)
    assert half_migrated(states) == {}
    assert states == {r.schema: "v2" if r.status == "migrated" else "v1" for r in report.results}


def test_cancel_from_another_thread_skips_the_rest_and_returns_promptly(
    database_url: URL, engine: Engine
) -> None:
    fingerprints = _build(database_url, engine)
    seen: list[TenantResult] = []
    enough = threading.Event()

    def on_result(result: TenantResult) -> None:
        seen.append(result)
        if len(seen) == CANCEL_AFTER:
            enough.set()

    ts = TenantSync(
        database_url, model_v2(), tenants="tenant_%", workers=WORKERS, on_result=on_result
    )
    cancelled_at: list[float] = []

    def cancel_when_enough() -> None:
        if enough.wait(timeout=60):
            cancelled_at.append(time.monotonic())
            ts.cancel()

    canceller = threading.Thread(target=cancel_when_enough)
    canceller.start()
    try:
        report = ts.sync_all()
        returned_after = time.monotonic() - cancelled_at[0]
    finally:
        enough.set()
        canceller.join(timeout=10)
    print(f"cancel(): returned after {returned_after:.2f}s; {report.summary()}")
    assert returned_after < 3, "in-flight tenants take 0.25 s; the rest are only skipped"
    _check_cancelled_report(report, engine, fingerprints)

    with engine.begin() as conn:
        conn.execute(sa.text("DROP EVENT TRIGGER slow_ddl"))
    with ts:
        rerun = ts.sync_all()  # a new run is not cancelled
    assert not rerun.cancelled
    assert rerun.counts["migrated"] == report.counts["skipped"], rerun.counts
    assert set(tenant_states(engine, NAMES, fingerprints).values()) == {"v2"}


def test_keyboard_interrupt_in_the_calling_thread_is_reraised_after_a_full_report(
    database_url: URL, engine: Engine
) -> None:
    fingerprints = _build(database_url, engine)
    seen: list[TenantResult] = []

    def on_result(result: TenantResult) -> None:
        seen.append(result)
        if len(seen) == CANCEL_AFTER:
            raise KeyboardInterrupt  # as if Ctrl-C came while the results were gathered

    with TenantSync(
        database_url, model_v2(), tenants="tenant_%", workers=WORKERS, on_result=on_result
    ) as ts:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            ts.sync_all()
        assert time.monotonic() - started < 5
        report = ts.last_report
    assert report is not None
    _check_cancelled_report(report, engine, fingerprints)


def test_ctrl_c_stops_a_sync_process_promptly_and_it_writes_the_report(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    fingerprints = _build(database_url, engine)
    report_path = tmp_path / "report.json"

    process = start_sync_process(database_url, report_path, workers=WORKERS)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            wait_until(
                lambda: (
                    process.poll() is not None or count_tenants_with_labels(watcher) >= CANCEL_AFTER
                ),
                timeout_s=60,
                what=f"{CANCEL_AFTER} tenants migrated by the sync process",
            )
        assert process.poll() is None, "the sync ended before Ctrl-C"
        interrupted_at = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
        exited_after = time.monotonic() - interrupted_at
    finally:
        stop_process(process)

    assert process.returncode == 130, err
    assert "interrupted" in out
    assert exited_after < 5, "in-flight tenants take 0.25 s; the rest are only skipped"
    report = SyncReport.load(report_path)
    print(f"Ctrl-C: exit 130 after {exited_after:.2f}s; {report.summary()}")
    _check_cancelled_report(report, engine, fingerprints)


def _cancel_during_retry_backoff(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> tuple[TenantResult, float]:
    """A locked tenant fails on lock_timeout and waits 5 s to retry; cancel() meanwhile."""
    names = tenant_names(2)
    fingerprints = build_v1_tenants(database_url, names)
    caplog.set_level(logging.INFO, logger="tenant_sync")
    ts = TenantSync(
        database_url,
        model_v2(),
        tenants="tenant_%",
        workers=2,
        lock_timeout=0.2,
        retries=3,
        retry_backoff=5,
    )
    cancelled_at: list[float] = []

    def cancel_when_retrying() -> None:
        wait_until(
            lambda: any("retrying" in record.getMessage() for record in caplog.records),
            timeout_s=30,
            what="a retry to be scheduled",
        )
        cancelled_at.append(time.monotonic())
        ts.cancel()

    canceller = threading.Thread(target=cancel_when_retrying)
    with ts, engine.connect() as blocker:
        blocker.execute(sa.text(f"LOCK TABLE {names[1]}.projects IN ACCESS EXCLUSIVE MODE"))
        canceller.start()
        try:
            report = ts.sync_all()
            returned_after = time.monotonic() - cancelled_at[0]
        finally:
            canceller.join(timeout=40)
            blocker.rollback()
    assert report.get(names[0]).status == "migrated"  # type: ignore[union-attr]
    states = tenant_states(engine, names, fingerprints)
    assert states[names[1]] == "v1"
    locked = report.get(names[1])
    assert locked is not None
    return locked, returned_after


def test_cancel_during_a_retry_backoff_returns_without_waiting_it_out(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    locked, returned_after = _cancel_during_retry_backoff(database_url, engine, caplog)
    assert returned_after < 2, "the 5 s backoff is cut short"
    assert locked.status in ("skipped", "failed") and locked.attempts == 1


def test_a_tenant_cancelled_while_waiting_to_retry_is_reported_with_its_error(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    locked, _ = _cancel_during_retry_backoff(database_url, engine, caplog)
    assert locked.status == "failed", locked
    assert locked.error is not None and "lock timeout" in locked.error
    assert "cancel" in locked.error
