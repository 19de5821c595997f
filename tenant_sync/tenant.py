"""One tenant, one connection, one transaction: set up, lock, plan, apply, record. Never raises.

The transaction either commits every change of the tenant or none: any error rolls
it back and becomes a ``failed`` :class:`~tenant_sync.report.TenantResult`.
Transient errors (connection lost, deadlock, lock timeout, serialization failure)
are retried with a doubling backoff.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .apply import OperationFailed, apply_plan, render_plan
from .batch import execute_batch, run_transaction, sqlstate
from .engine import unprepared
from .fingerprint import SHAPE_CHANGED_SQLSTATE, Shape, recheck_statement
from .locking import check_schema_access, lock_statement, lock_tenant, quote
from .model import Model
from .options import SyncOptions
from .plan import ignored_tables, plan_tenant
from .report import Status, TenantResult
from .shapes import ShapePlan
from .signup import SignupPlan, build_from_plan
from .version import read_version, version_statements

__all__ = ["TenantJob", "sync_one"]

log = logging.getLogger(__name__)

# SQLSTATEs worth another attempt: the same work may well succeed a moment later.
_TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock timeout",
    "57P01": "connection terminated by the server",
    "57P02": "connection terminated by the server",
    "57P03": "server not accepting connections",
    "08000": "connection lost",
    "08003": "connection lost",
    "08006": "connection lost",
}


class TenantFailure(Exception):
    """A tenant cannot be synced for a reason that is not a database error."""


@dataclass(frozen=True)
class TenantJob:
    """Everything a worker needs for one tenant; immutable, so threads share nothing."""

    schema: str
    model: Model
    options: SyncOptions
    create: bool = False
    dry_run: bool = False
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)
    #: The plan of the tenant's shape, and the tenant's own shape as the pass read it:
    #: with both, the plan is applied in one round trip after a recheck.
    shape_plan: ShapePlan | None = None
    shape: Shape | None = None
    #: With ``create``: the plan that builds an empty schema, if a signup has found it
    #: (used, and filled, by signups; see :mod:`tenant_sync.signup`).
    signup_plan: SignupPlan | None = None


@dataclass
class _Outcome:
    status: Status
    operations: list[str]
    sql: list[str]
    withheld: list[str]


def sync_one(engine: Engine, job: TenantJob) -> TenantResult:
    """Sync one tenant and return its result; never raises (cancellation gives ``skipped``)."""
    started = time.monotonic()
    attempt = 0
    last_error: str | None = None
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
                error="run cancelled before this tenant started",
                duration_s=time.monotonic() - started,
                attempts=attempt,
            )
        attempt += 1
        try:
            outcome = _attempt(engine, job)
        except Exception as exc:
            transient = _transient_reason(exc)
            if transient and attempt <= job.options.retries and not job.cancel.is_set():
                delay = job.options.retry_backoff * 2 ** (attempt - 1)
                log.info("tenant %s: %s, retrying in %.2fs", job.schema, transient, delay)
                last_error = describe_error(exc)
                job.cancel.wait(delay)
                continue
            return TenantResult(
                job.schema,
                "failed",
                error=describe_error(exc),
                duration_s=time.monotonic() - started,
                attempts=attempt,
            )
        return TenantResult(
            job.schema,
            outcome.status,
            operations=outcome.operations,
            sql=outcome.sql,
            withheld=outcome.withheld,
            duration_s=time.monotonic() - started,
            attempts=attempt,
        )


def _attempt(engine: Engine, job: TenantJob) -> _Outcome:
    if job.create and job.signup_plan is not None and not job.dry_run:
        built = _build_from_signup_plan(engine, job, job.signup_plan)
        if built is not None:
            return built
    if job.shape_plan is not None and job.shape is not None and not job.dry_run:
        shared = _apply_shared_plan(engine, job, job.shape_plan, job.shape)
        if shared is not None:
            return shared
    return _in_transaction(engine, replace(job, shape_plan=None))


def _in_transaction(engine: Engine, job: TenantJob) -> _Outcome:
    with engine.connect() as conn, unprepared(conn):
        transaction = conn.begin()
        try:
            outcome = _sync_in_transaction(conn, job)
        except BaseException:
            transaction.rollback()
            raise
        if job.dry_run:
            transaction.rollback()
        else:
            transaction.commit()
        return outcome


def _sync_in_transaction(conn: Connection, job: TenantJob) -> _Outcome:
    options = job.options
    lock_tenant(conn, job.schema, options.lock_timeout, options.statement_timeout)
    exists = check_schema_access(conn, job.schema, write=not job.dry_run)
    operations: list[str] = []
    sql: list[str] = []
    if not exists:
        if not job.create:
            raise TenantFailure(
                f"schema {job.schema!r} does not exist; create it, or use "
                "sync_tenant(schema, create=True)"
            )
        create_schema = f"CREATE SCHEMA {quote(job.schema)}"
        if not job.dry_run:
            execute_batch(conn, [create_schema])
        operations.append(f"create schema {job.schema}")
        sql.append(create_schema)

    plan = plan_tenant(conn, job.schema, job.model, options)
    keep = not exists and job.signup_plan is not None and not plan.withheld and not job.dry_run
    # Rendered before it runs: rendering looks up which enum types exist.
    signup_sql = render_plan(conn, plan) if keep else None
    operations += plan.descriptions
    withheld = plan.withheld_descriptions
    if job.dry_run:
        sql += render_plan(conn, plan) if plan.operations else []
        return _Outcome("planned" if operations else "unchanged", operations, sql, withheld)
    if plan.operations:
        sql += apply_plan(conn, plan)
    if job.signup_plan is not None and signup_sql is not None:
        job.signup_plan.remember(plan.descriptions, signup_sql)
    if not withheld and read_version(plan.context) != job.model.fingerprint:
        statements = version_statements(job.schema, options.version_table, job.model.fingerprint)
        execute_batch(conn, statements)
    return _Outcome("migrated" if operations else "unchanged", operations, sql, withheld)


def _apply_shared_plan(
    engine: Engine, job: TenantJob, shared: ShapePlan, shape: Shape
) -> _Outcome | None:
    """Apply the shape's SQL in one transaction and one round trip, or return None.

    The round trip takes the tenant's lock, re-checks that its catalog is as the pass saw
    it (its stamp), runs the SQL and records the version.  None means the tenant must be compared alone: it changed
    since the catalog pass, or the shape's SQL failed in it (the comparison then names
    the operation that fails).  Transient errors are raised, to be retried.
    """
    options = job.options
    statements = [
        lock_statement(job.schema, options.lock_timeout, options.statement_timeout),
        recheck_statement(job.schema, shape, ignored_tables(options)),
        *shared.sql,
    ]
    if not shared.withheld:
        statements += version_statements(
            job.schema,
            options.version_table,
            job.model.fingerprint,
            create=not shape.has_version_table,
        )
    try:
        run_transaction(engine, statements)
    except sa.exc.DBAPIError as exc:
        if _transient_reason(exc):
            raise
        if sqlstate(exc) == SHAPE_CHANGED_SQLSTATE:
            log.debug("tenant %s: changed since the catalog pass; comparing it alone", job.schema)
        else:
            log.info(
                "tenant %s: shared plan failed (%s); comparing it alone",
                job.schema,
                describe_error(exc),
            )
        return None
    return _Outcome("migrated", list(shared.operations), list(shared.sql), list(shared.withheld))


def _build_from_signup_plan(engine: Engine, job: TenantJob, signup: SignupPlan) -> _Outcome | None:
    """Build a new tenant from the kept signup plan in one round trip, or return None.

    None means the tenant must be compared alone: there is no kept plan yet, its schema
    exists and is not empty, or the kept SQL failed in it.  Transient errors are raised,
    to be retried.
    """
    options = job.options
    try:
        built = build_from_plan(engine, job.schema, signup, job.model.fingerprint, options)
    except sa.exc.DBAPIError as exc:
        if _transient_reason(exc):
            raise
        log.info(
            "tenant %s: the kept signup plan failed (%s); comparing it alone",
            job.schema,
            describe_error(exc),
        )
        return None
    if built is None:
        return None
    operations, sql = built
    return _Outcome("migrated", operations, sql, [])


def describe_error(exc: BaseException) -> str:
    """One line that says why a tenant failed, naming a timeout when there was one."""
    prefix = ""
    description = ""
    if isinstance(exc, OperationFailed):
        description = exc.description
        prefix = f"while running '{description}': "
        exc = exc.cause
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        message = " ".join(str(exc.orig).split())
        hint = _hint(sqlstate(exc) or "", description)
        return f"{prefix}{type(exc.orig).__name__}: {message}{hint}"
    return f"{prefix}{type(exc).__name__}: {' '.join(str(exc).split())}"


_HINTS = {
    "55P03": " (lock_timeout reached: another session holds a lock on this tenant)",
    "57014": " (statement_timeout reached, or the statement was cancelled)",
    "23502": (
        " (a NOT NULL column or constraint meets existing NULLs: give the column a "
        "server_default, or fill the rows first)"
    ),
}


def _hint(sqlstate: str, description: str) -> str:
    if (
        sqlstate == "23502"
        and description.startswith("add column ")
        and description.endswith(" NOT NULL")
    ):
        # The column is new, so there is nothing to fill: the rows are the problem.
        table = description.split()[2].split(".")[0]
        return (
            f" ({table} has rows, and a NOT NULL column needs a value in each: give the "
            "column a server_default, or add it nullable, fill it, then make it NOT NULL)"
        )
    return _HINTS.get(sqlstate, "")


def _transient_reason(exc: BaseException) -> str | None:
    if isinstance(exc, OperationFailed):
        exc = exc.cause
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    state = sqlstate(exc)
    if state in _TRANSIENT_SQLSTATES:
        return _TRANSIENT_SQLSTATES[state]
    if _refused_login(exc):
        return None
    if exc.connection_invalidated or (isinstance(exc, sa.exc.OperationalError) and state is None):
        return "connection lost"
    return None


# A login the server refuses for good: psycopg gives no SQLSTATE for a failed
# connection, only the server's FATAL message, so it is recognised by its words.
_REFUSED_LOGIN = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|"
    r"(role|database) \"[^\"]*\" does not exist|"
    r"permission denied for database|not permitted to log in"
)


def _refused_login(exc: sa.exc.DBAPIError) -> bool:
    return exc.orig is not None and _REFUSED_LOGIN.search(str(exc.orig)) is not None
