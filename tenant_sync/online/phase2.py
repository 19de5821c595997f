"""Phase 2 of the online path: each statement alone, after the tenant's transaction committed.

``CREATE INDEX CONCURRENTLY`` and ``DROP INDEX CONCURRENTLY`` cannot run in a
transaction: they run on an autocommit connection, with no session setting (their
statements are schema-qualified, see :mod:`tenant_sync.online.split`).  Their waits for
locks and for older transactions block no writer, so no ``lock_timeout`` bounds them.
Before each, a short transaction under the tenant's advisory lock looks at the catalog:
an index already built is not built again; an invalid one (a build that was killed or
failed) is dropped first, unless another session is building it right now
(``pg_stat_progress_create_index``), and then the tenant waits for a later run.

Every other step (VALIDATE CONSTRAINT, SET NOT NULL, the helper's drop, ADD CONSTRAINT
... USING INDEX) runs in a transaction of its own under the tenant's lock, with
``lock_timeout``, retried on a transient error as a tenant is.  Each step done is
recorded in the tenant's history, in its transaction when it has one.  Nothing else is
kept: a rerun finds what is left from the catalog (see :mod:`tenant_sync.online`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..batch import execute_batch
from ..changes import Changes
from ..classes import ChangeClass
from ..engine import unprepared
from ..failures import failure_message, transient_reason
from ..history import history_statements
from ..session import lock_tenant
from ..sql import quote, read_query
from ..version_table import version_statements
from .split import OnlineStep

if TYPE_CHECKING:
    from ..tenant import TenantJob

__all__ = ["StepOutcome", "run_phase2"]


@dataclass(frozen=True)
class StepOutcome:
    """How one phase-2 step ended: ``done``, ``failed``, ``waiting`` or ``not run``."""

    step: OnlineStep
    state: str
    error: str | None = None

    def line(self) -> str:
        """The step and its state in one line, as results list them."""
        return f"{self.step.words}: {self.state}" + (f" ({self.error})" if self.error else "")


_IDLE_BLOCKERS_SQL = read_query("tenant_sync.online", "idle_blockers.sql")

#: The SQLSTATE of "relation already exists".
_DUPLICATE_TABLE = "42P07"


class _Waiting(Exception):
    """The step must wait for a later run: another session's work on the table is in
    flight, or a session idle in an old transaction would hold the step up."""


def run_phase2(
    engine: Engine, job: TenantJob, steps: Sequence[OnlineStep], reaches_model: bool
) -> list[StepOutcome]:
    """Run ``steps`` in order; the first that fails or must wait stops the rest.

    With ``reaches_model``, the version table records the model once every step is done.
    """
    outcomes: list[StepOutcome] = []
    for index, step in enumerate(steps):
        if job.cancel.is_set():
            outcomes += [StepOutcome(rest, "not run", "run cancelled") for rest in steps[index:]]
            return outcomes
        try:
            _with_retries(engine, job, step)
        except _Waiting as exc:
            outcomes.append(StepOutcome(step, "waiting", str(exc)))
        except Exception as exc:  # a step's failure is the tenant's result, never raised
            outcomes.append(StepOutcome(step, "failed", failure_message(exc)))
        else:
            outcomes.append(StepOutcome(step, "done"))
            continue
        outcomes += [StepOutcome(rest, "not run") for rest in steps[index + 1 :]]
        return outcomes
    if reaches_model and steps:
        with _locked(engine, job) as conn:
            statements = version_statements(
                job.schema, job.options.version_table, job.model.fingerprint
            )
            execute_batch(conn, statements)
    return outcomes


def _with_retries(engine: Engine, job: TenantJob, step: OnlineStep) -> None:
    attempt = 0
    while True:
        attempt += 1
        try:
            if step.concurrently:
                _run_concurrently(engine, job, step)
            else:
                with _locked(engine, job) as conn:
                    _check_still_needed(conn, job.schema, step)
                    execute_batch(conn, [step.sql])
                    _record(conn, job, step)
            return
        except _Waiting:
            raise
        except Exception as exc:
            if not transient_reason(exc) or attempt > job.options.retries:
                raise
            job.cancel.wait(job.options.retry_backoff * 2 ** (attempt - 1))


def _run_concurrently(engine: Engine, job: TenantJob, step: OnlineStep) -> None:
    assert step.index is not None
    with _locked(engine, job) as conn:
        _check_still_needed(conn, job.schema, step)
        valid, building = _index_state(conn, job.schema, step.table, step.index)
        _check_no_idle_blocker(conn, job, step)
    if building:
        raise _Waiting(f"another session is building an index on {step.table}; a rerun finishes it")
    statements = []
    if step.kind == "create_index" and valid:
        return  # built meanwhile, by another run
    if step.kind == "create_index" and valid is False:
        statements.append(
            f"DROP INDEX CONCURRENTLY IF EXISTS {quote(job.schema)}.{quote(step.index)}"
        )
    statements.append(step.sql)
    try:
        with engine.connect() as conn, unprepared(conn):
            conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                execute_batch(conn, [statement])  # one at a time: none may share a transaction
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != _DUPLICATE_TABLE:
            raise
        # Another run started the same build between the look and the statement.
        with _locked(engine, job) as conn:
            valid, _ = _index_state(conn, job.schema, step.table, step.index)
        if not valid:
            raise _Waiting(
                f"another session is building {step.index}; a rerun finishes it"
            ) from None
        return
    with _locked(engine, job) as conn:
        _record(conn, job, step)


def _check_still_needed(conn: Connection, schema: str, step: OnlineStep) -> None:
    """Raise :class:`_Waiting` when the catalog says the step was planned on a state
    that another run has moved on from meanwhile (it is in its own phase 2)."""
    row = conn.execute(
        sa.text(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint k"
            "   JOIN pg_catalog.pg_class ic ON ic.oid = k.conindid"
            "   WHERE ic.relnamespace = t.relnamespace AND ic.relname = :index),"
            " EXISTS (SELECT FROM pg_catalog.pg_constraint k"
            "   WHERE k.conrelid = t.oid AND k.conname = :constraint)"
            " FROM pg_catalog.pg_class t JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = :schema AND t.relname = :table"
        ),
        {"schema": schema, "table": step.table, "index": step.index, "constraint": step.constraint},
    ).first()
    backs_constraint, constraint_exists = (False, False) if row is None else row
    stale = (
        (step.kind == "drop_index" and backs_constraint)
        or (step.kind == "unique" and constraint_exists)
        or (step.kind == "validate" and not constraint_exists)
    )
    if stale:
        raise _Waiting(
            f"{step.table} changed since the tenant was planned (another run is changing it);"
            " a rerun finishes it"
        )


def _check_no_idle_blocker(conn: Connection, job: TenantJob, step: OnlineStep) -> None:
    """Raise :class:`_Waiting` when a session idle in an old transaction would hold the
    build up for good (see ``idle_blockers.sql``)."""
    row = conn.execute(
        sa.text(_IDLE_BLOCKERS_SQL),
        {"schema": job.schema, "table": step.table, "older_than": job.options.lock_timeout},
    ).first()
    if row is not None:
        pid, state, seconds = row
        raise _Waiting(
            f"session {pid} is {state} for {seconds} s, holding a lock on {step.table} or"
            " a snapshot: the build would wait for it to end; end it, or rerun later"
        )


def _index_state(conn: Connection, schema: str, table: str, index: str) -> tuple[bool | None, bool]:
    """(valid, building): the index's ``indisvalid`` (None if there is none), and whether
    a concurrent index build runs on its table now."""
    row = conn.execute(
        sa.text(
            "SELECT (SELECT i.indisvalid FROM pg_catalog.pg_index i"
            "   JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
            "   WHERE ic.relnamespace = t.relnamespace AND ic.relname = :index),"
            " EXISTS (SELECT FROM pg_catalog.pg_stat_progress_create_index p"
            "   WHERE p.relid = t.oid AND p.pid <> pg_catalog.pg_backend_pid())"
            " FROM pg_catalog.pg_class t JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = :schema AND t.relname = :table"
        ),
        {"schema": schema, "table": table, "index": index},
    ).first()
    return (None, False) if row is None else (row[0], bool(row[1]))


@contextmanager
def _locked(engine: Engine, job: TenantJob) -> Iterator[Connection]:
    """A transaction on a connection of its own, under the tenant's lock."""
    options = job.options
    with engine.connect() as conn, unprepared(conn), conn.begin():
        lock_tenant(conn, job.schema, options.lock_timeout, options.statement_timeout)
        yield conn


def _record(conn: Connection, job: TenantJob, step: OnlineStep) -> None:
    change_class: ChangeClass = (
        "data_dependent" if step.kind in ("validate", "set_not_null", "unique") else "safe"
    )
    changes = Changes(operations=(step.words,), classes=(change_class,), sql=(step.sql,))
    execute_batch(conn, history_statements(job.schema, job.run_id, job.model.fingerprint, changes))
