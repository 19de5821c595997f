"""One tenant alone: its round trip if it has one, else compared alone; retried. Never raises.

A tenant with a :class:`~tenant_sync.fastpath.round_trip.RoundTrip` (its shape's change
set, or a signup's kept plan) runs it; one without, or whose trip cannot serve, is
compared alone, in one transaction: set up, lock, plan, apply, record (see
:mod:`tenant_sync.alone`).  Either way the transaction commits every change of the
tenant or none: any error rolls it back and becomes a ``failed``
:class:`~tenant_sync.report.TenantResult`.  A tenant with data steps to run is changed
in phases around them, each committed (see :mod:`tenant_sync.steps`).  Transient errors
(connection lost, deadlock, lock timeout, serialization failure) are retried with a
doubling backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Engine

from .alone import Outcome, checked, in_transaction, with_steps
from .changes import Changes
from .data_checks import run_checks
from .engine import unprepared
from .failures import OperationFailed, failure_message, transient_reason
from .fastpath.round_trip import RoundTrip, run_round_trip
from .fastpath.signup import SignupCache
from .model import Model
from .options import SyncOptions
from .report import TenantResult
from .session import set_up_session
from .steps import Step

__all__ = ["CANCELLED", "TenantJob", "sync_one"]

#: Why a tenant that cancel() stopped before its first attempt is skipped.
CANCELLED = "run cancelled before this tenant started"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantJob:
    """Everything a worker needs for one tenant; immutable, so threads share nothing."""

    schema: str
    model: Model
    options: SyncOptions
    create: bool = False
    dry_run: bool = False
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    #: The one round trip that changes the tenant, when its changes are known in advance.
    trip: RoundTrip | None = None
    #: At signup: where the plan of a newly created, empty schema is kept for the next.
    signup_cache: SignupCache | None = None
    #: In a dry run: the tenant's changes, known from its shape; only its data is asked.
    planned: Changes | None = None
    #: The run the tenant's history entry names (see :mod:`tenant_sync.history`).
    run_id: str = ""
    #: The data steps the tenant may have to run, in the order registered (see
    #: :mod:`tenant_sync.steps`); the tenant's history says which it has done.  In a dry
    #: run, those it would run.
    steps: tuple[Step, ...] = ()
    #: The catalog pass found the tenant equal to the model: only its steps run.
    up_to_date: bool = False
    #: The tenant's tables that take the online path (see :mod:`tenant_sync.online`);
    #: None: not known yet, looked up once the tenant's plan changes anything.
    online_tables: frozenset[str] | None = None


def sync_one(engine: Engine, job: TenantJob) -> TenantResult:
    """Sync one tenant and return its result; never raises (cancellation gives ``skipped``)."""
    started = time.monotonic()
    attempt = 0
    last_error: str | None = None
    # The changes of the latest attempt, once known: a failed result still shows them.
    tried: list[Changes] = []
    while True:
        if job.cancel.is_set() and last_error is not None:
            # Cancelled while waiting to retry: the tenant was tried and rolled back.
            return TenantResult(
                job.schema,
                "failed",
                error=f"{last_error} (not retried: run cancelled)",
                duration_s=time.monotonic() - started,
                attempts=attempt,
            )
        if job.cancel.is_set():
            return TenantResult(
                job.schema,
                "skipped",
                error=CANCELLED,
                duration_s=time.monotonic() - started,
                attempts=attempt,
            )
        attempt += 1
        try:
            outcome = _attempt(engine, job, tried)
        except Exception as exc:
            transient = transient_reason(exc)
            if transient and attempt <= job.options.retries and not job.cancel.is_set():
                delay = job.options.retry_backoff * 2 ** (attempt - 1)
                log.info("tenant %s: %s, retrying in %.2fs", job.schema, transient, delay)
                last_error = failure_message(exc)
                job.cancel.wait(delay)
                continue
            return TenantResult.of(
                job.schema,
                "failed",
                _as_tried(tried, exc),
                error=failure_message(exc),
                duration_s=time.monotonic() - started,
                attempts=attempt,
            )
        return TenantResult.of(
            job.schema,
            outcome.status,
            outcome.changes,
            error=outcome.error,
            duration_s=time.monotonic() - started,
            attempts=attempt,
            steps=list(outcome.steps),
            online=list(outcome.online),
        )


def _as_tried(tried: list[Changes], exc: BaseException) -> Changes:
    """What the failed attempt tried: its changes, with the SQL it ran up to the failure."""
    if not tried:
        return Changes()
    statements = exc.statements if isinstance(exc, OperationFailed) else []
    return replace(tried[-1], sql=tuple(statements)) if statements else tried[-1]


def _attempt(engine: Engine, job: TenantJob, tried: list[Changes]) -> Outcome:
    """The tenant's round trip if it has one and it serves, else the tenant compared alone.

    In a dry run, a tenant whose changes are known from its shape is only asked,
    read-only, whether its data lets them run.
    """
    if job.dry_run and job.planned is not None:
        return _check_planned(engine, job, job.planned)
    if job.trip is not None and not job.dry_run:
        tried.append(job.trip.changes_run)
        ran = run_round_trip(engine, job.trip, job.options, job.run_id, job.model.fingerprint)
        if ran is not None:
            return Outcome("migrated", ran.changes_run)
    if job.steps and not job.dry_run:
        return with_steps(engine, job, tried)
    return in_transaction(engine, job, tried)


def _check_planned(engine: Engine, job: TenantJob, planned: Changes) -> Outcome:
    with engine.connect() as conn, unprepared(conn), conn.begin() as transaction:
        set_up_session(conn, job.schema, job.options.lock_timeout, job.options.statement_timeout)
        failures = run_checks(conn, planned.checks)
        transaction.rollback()
    return checked(planned, failures, tuple(step.name for step in job.steps))
