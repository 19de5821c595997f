"""A tenant compared alone: in one transaction, or in phases around its data steps.

A tenant with no data step to run is set up, locked, planned, changed and recorded in
one transaction (:func:`in_transaction`).  One with steps to run (see
:mod:`tenant_sync.steps`) is changed in phases: the changes of the classes below the
first step's ``before``, committed; each step of that rank, in transactions of its own;
the next rank's changes; and so on, the rest of the changes last.  Every phase plans
the tenant anew from the catalog, and every step asks the tenant's history whether it
is done, under the tenant's lock: a rerun after a failure, a crash or a concurrent run
goes on from where the tenant is.  A new tenant (no model table yet) is built, and its
steps run or recorded (``on_signup``), in one transaction.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import Connection, Engine

from .apply import apply_plan, render_plan
from .batch import execute_batch
from .changes import Changes, strict_failure, with_schema_created
from .classes import CHANGE_CLASSES, classify
from .data_checks import run_checks
from .engine import unprepared
from .failures import TenantFailure, failure_message, transient_reason
from .history import done_steps, history_statements, step_statements
from .online import OnlineStep, big_tables, run_phase2, split_online, tenant_types
from .plan import Plan, plan_tenant
from .report import Status
from .session import check_schema_access, lock_tenant
from .sql import quote
from .steps import SKIPPED_AT_SIGNUP, Step, StepTenant, pending_steps
from .version_table import read_version, version_statements

if TYPE_CHECKING:
    from .tenant import TenantJob

__all__ = ["Outcome", "checked", "in_transaction", "with_steps"]


@dataclass
class Outcome:
    """How one attempt at a tenant ended: its status, its changes, the steps it ran."""

    status: Status
    changes: Changes
    error: str | None = None
    steps: tuple[str, ...] = ()
    #: The tenant was new: built, and its steps run or recorded, in this one transaction.
    built: bool = False
    #: The phase-2 steps of the online path, each with its state (see
    #: :mod:`tenant_sync.online`).
    online: tuple[str, ...] = ()
    #: The phase-2 steps still to run once the transaction has committed.
    phase2: tuple[OnlineStep, ...] = ()


def checked(changes: Changes, failures: list[str], steps: tuple[str, ...] = ()) -> Outcome:
    """A dry run's outcome: failed if a data check failed, else planned or unchanged."""
    if failures:
        return Outcome("failed", changes, "; ".join(failures), steps)
    return Outcome("planned" if changes.operations or steps else "unchanged", changes, None, steps)


def in_transaction(
    engine: Engine, job: TenantJob, tried: list[Changes], until: int | None = None
) -> Outcome:
    """Compare the tenant with the model and change it, in one transaction; with
    ``until``, only the changes whose class ranks below it (see :data:`CHANGE_CLASSES`)."""
    with engine.connect() as conn, unprepared(conn):
        transaction = conn.begin()
        try:
            outcome = _sync_in_transaction(conn, job, tried, until)
        except BaseException:
            transaction.rollback()
            raise
        if job.dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    if outcome.phase2:
        return _after_commit(engine, job, outcome)
    return outcome


def _after_commit(engine: Engine, job: TenantJob, outcome: Outcome) -> Outcome:
    """Run the online path's phase 2; ``partial`` unless every step is done."""
    ran = run_phase2(engine, job, outcome.phase2, outcome.changes.reaches_model)
    done = tuple(step.step.sql for step in ran if step.state == "done")
    changes = replace(outcome.changes, sql=(*outcome.changes.sql, *done))
    finished = all(step.state == "done" for step in ran)
    errors = [f"{step.step.words}: {step.error}" for step in ran if step.error]
    return replace(
        outcome,
        status=outcome.status if finished else "partial",
        changes=changes,
        error=None if finished else "online step not finished: " + "; ".join(errors),
        online=tuple(step.line() for step in ran),
        phase2=(),
    )


def with_steps(engine: Engine, job: TenantJob, tried: list[Changes]) -> Outcome:
    """Change the tenant in phases around its data steps (see the module's documentation).

    A failure after a phase or a step committed is an outcome, ``failed``, that says what
    stays committed; a transient error is raised, to be retried from the catalog's state.
    A phase whose online steps did not finish leaves the tenant ``partial``: its later
    steps and phases wait for a rerun.
    """
    committed: list[Outcome] = []
    try:
        for rank, steps in itertools.groupby(sorted(job.steps, key=_rank), key=_rank):
            if not job.up_to_date:
                outcome = in_transaction(engine, job, tried, until=rank)
                committed.append(outcome)
                if outcome.built:
                    return outcome
                if outcome.status == "partial":
                    return _partial(committed)
            for step in steps:
                if _run_step(engine, job, step):
                    committed.append(Outcome("migrated", Changes(), steps=(step.name,)))
        if not job.up_to_date:
            committed.append(in_transaction(engine, job, tried))
            if committed[-1].status == "partial":
                return _partial(committed)
    except Exception as exc:
        if transient_reason(exc):
            raise
        return Outcome("failed", _merged(committed), _failure(exc, committed), _ran(committed))
    changes = _merged(committed)
    ran = _ran(committed)
    status: Status = "migrated" if changes.operations or ran else "unchanged"
    return Outcome(status, changes, None, ran, online=_online_lines(committed))


def _partial(committed: list[Outcome]) -> Outcome:
    """The tenant's outcome when its latest phase ended ``partial``: every phase's changes."""
    return replace(
        committed[-1],
        changes=_merged(committed),
        steps=_ran(committed),
        online=_online_lines(committed),
    )


def _online_lines(outcomes: list[Outcome]) -> tuple[str, ...]:
    return tuple(line for outcome in outcomes for line in outcome.online)


def _sync_in_transaction(
    conn: Connection, job: TenantJob, tried: list[Changes], until: int | None
) -> Outcome:
    options = job.options
    lock_tenant(conn, job.schema, options.lock_timeout, options.statement_timeout)
    exists = check_schema_access(conn, job.schema, write=not job.dry_run)
    if not exists and not job.create:
        raise TenantFailure(
            f"schema {job.schema!r} does not exist; create it, or sign it up"
            " (sync_tenant(name, create=True), or tenant-sync signup NAME)"
        )
    if not exists and not job.dry_run:
        execute_batch(conn, [f"CREATE SCHEMA {quote(job.schema)}"])
    steps: tuple[Step, ...] = ()
    new = False
    if job.steps:  # asked only then: a role may lack the right to read the history
        new = not (exists and _has_model_tables(conn, job))
        steps = pending_steps(job.steps, done_steps(conn, job.schema) if exists else (), False)

    plan = plan_tenant(conn, job.schema, job.model, options)
    if steps and not new:
        plan = replace(plan, operations=tuple(_split_not_null_adds(plan.operations)))
    planned = plan.changes(())  # the SQL is known once rendered or run
    tried.append(planned)
    if options.strict and planned.differences:
        raise TenantFailure(strict_failure(planned.differences))
    if until is not None and not new and not job.dry_run:
        plan = replace(plan, operations=tuple(_ranked_below(plan.operations, until)))
    words = plan  # what the result says: the operations as planned, online or not
    phase2: tuple[OnlineStep, ...] = ()
    if exists and not new and plan.operations:
        plan, phase2, absorbed = _online(conn, job, plan)
        words = replace(
            words, operations=tuple(op for op in words.operations if op not in absorbed)
        )
    keep = not exists and job.signup_cache is not None and plan.reaches_model and not job.dry_run
    # Rendered before it runs: rendering looks up which enum types exist.
    signup_sql = render_plan(conn, plan) if keep and not steps else None
    if job.dry_run:
        changes = words.changes(render_plan(conn, plan) if plan.operations else [])
        changes = replace(changes, sql=(*changes.sql, *(step.sql for step in phase2)))
    else:
        changes = words.changes(apply_plan(conn, plan) if plan.operations else [])
    if not exists:
        changes = with_schema_created(job.schema, changes)
    if job.dry_run:
        listed = tuple(step.name for step in pending_steps(steps, (), new))
        outcome = checked(changes, run_checks(conn, changes.checks) if exists else [], listed)
        return replace(outcome, online=tuple(f"{step.words}: planned" for step in phase2))
    if job.signup_cache is not None and signup_sql is not None:
        job.signup_cache.remember(plan.changes(signup_sql))
    if changes.sql:
        execute_batch(
            conn, history_statements(job.schema, job.run_id, job.model.fingerprint, changes)
        )
    ran = _run_at_signup(conn, job, steps) if new else ()
    final = (until is None or new) and not phase2
    if final and plan.reaches_model and read_version(plan.context) != job.model.fingerprint:
        statements = version_statements(job.schema, options.version_table, job.model.fingerprint)
        execute_batch(conn, statements)
    status: Status = "migrated" if changes.operations or ran else "unchanged"
    return Outcome(status, changes, steps=ran, built=new, phase2=phase2)


def _online(
    conn: Connection, job: TenantJob, plan: Plan
) -> tuple[Plan, tuple[OnlineStep, ...], tuple[ops.MigrateOperation, ...]]:
    """The plan's phase 1, its phase 2 on the tenant's big tables and the operations phase
    2 does itself (see :mod:`tenant_sync.online`); the plan as it is when no table is big."""
    options = job.options
    tables = job.online_tables
    if tables is None:
        found = big_tables(conn, [job.schema], options)
        tables = found.get(job.schema, frozenset())
    if not tables:
        return plan, (), ()
    first, second, absorbed = split_online(
        plan.operations, job.schema, tables, tenant_types(job.model)
    )
    return replace(plan, operations=first), second, absorbed


def _run_at_signup(conn: Connection, job: TenantJob, steps: tuple[Step, ...]) -> tuple[str, ...]:
    """Run the ``on_signup="run"`` steps of a new tenant in its transaction, record the
    others as done without running them; the names of those that ran."""
    ran = []
    for step in steps:
        if step.on_signup == "run":
            batch = 0
            while not _call(step, conn, StepTenant(job.schema, step.batch_size, batch, new=True)):
                batch += 1
            words = "ran at signup"
            ran.append(step.name)
        else:
            words = SKIPPED_AT_SIGNUP
        record = step_statements(job.schema, job.run_id, job.model.fingerprint, step.name, words)
        execute_batch(conn, record)
    return tuple(ran)


def _run_step(engine: Engine, job: TenantJob, step: Step) -> bool:
    """Run ``step`` in the tenant, a transaction per call; False if it was done already."""
    started = time.monotonic()
    batch = 0
    while True:
        if job.cancel.is_set():
            raise TenantFailure(
                f"step {step.name!r} stopped after {batch} batches: run cancelled;"
                " a rerun goes on with it"
            )
        with engine.connect() as conn, unprepared(conn), conn.begin():
            options = job.options
            lock_tenant(conn, job.schema, options.lock_timeout, options.statement_timeout)
            if step.name in done_steps(conn, job.schema):
                return False  # another run did it meanwhile
            finished = _call(step, conn, StepTenant(job.schema, step.batch_size, batch))
            batch += 1
            if finished:
                words = f"ran in {time.monotonic() - started:.2f} s" + (
                    f", {batch} batches of up to {step.batch_size:,} rows"
                    if step.batch_size is not None
                    else ""
                )
                record = step_statements(
                    job.schema, job.run_id, job.model.fingerprint, step.name, words
                )
                execute_batch(conn, record)
                return True


def _call(step: Step, conn: Connection, tenant: StepTenant) -> bool:
    """Call the step's function once; True if that was its last call.  Any error it
    raises names the step."""
    try:
        returned = step.function(conn, tenant)
        if not conn.in_transaction():
            raise RuntimeError("it ended its transaction; a step must not commit or roll back")
        return step.finished(returned)
    except Exception as exc:
        if transient_reason(exc):
            raise
        raise TenantFailure(f"step {step.name!r} failed: {failure_message(exc)}") from exc


def _has_model_tables(conn: Connection, job: TenantJob) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c"
                " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relname = ANY(CAST(:tables AS text[])))"
            ),
            {"schema": job.schema, "tables": sorted(job.model.tenant_table_names)},
        ).scalar_one()
    )


def _split_not_null_adds(
    operations: Iterable[ops.MigrateOperation],
) -> Iterator[ops.MigrateOperation]:
    """Each NOT NULL column added without a default, added nullable then set NOT NULL,
    so that a step between the two can fill it."""
    for op in operations:
        if not isinstance(op, ops.AddColumnOp) or not _fillable(op.column):
            yield op
            continue
        nullable = op.column._copy()
        nullable.nullable = True
        yield ops.AddColumnOp(op.table_name, nullable, schema=op.schema)
        yield ops.AlterColumnOp(
            op.table_name,
            op.column.name,
            schema=op.schema,
            modify_nullable=False,
            existing_type=op.column.type,
            existing_nullable=True,
        )


def _fillable(column: sa.Column[Any]) -> bool:
    """A NOT NULL column that is added empty: no default, no identity, not generated."""
    return not (
        column.nullable
        or column.server_default is not None
        or column.primary_key
        or column.identity is not None
        or column.computed is not None
    )


def _ranked_below(
    operations: Iterable[ops.MigrateOperation], rank: int
) -> Iterator[ops.MigrateOperation]:
    return (op for op in operations if CHANGE_CLASSES.index(classify(op)) < rank)


def _rank(step: Step) -> int:
    return step.rank


def _ran(outcomes: list[Outcome]) -> tuple[str, ...]:
    return tuple(name for outcome in outcomes for name in outcome.steps)


def _merged(outcomes: list[Outcome]) -> Changes:
    """The changes of every phase that committed, in order; what still differs, from the last."""
    phases = [outcome.changes for outcome in outcomes]
    if not phases:
        return Changes()
    return replace(
        phases[-1],
        operations=tuple(words for changes in phases for words in changes.operations),
        classes=tuple(change_class for changes in phases for change_class in changes.classes),
        sql=tuple(statement for changes in phases for statement in changes.sql),
    )


def _failure(exc: BaseException, committed: list[Outcome]) -> str:
    message = failure_message(exc)
    operations = sum(len(outcome.changes.operations) for outcome in committed)
    ran = _ran(committed)
    if not operations and not ran:
        return message
    done = [f"{operations} change{'s' if operations != 1 else ''}"] if operations else []
    done += [f"step {name!r}" for name in ran]
    return f"{message} (committed before it: {', '.join(done)}; a rerun goes on from there)"
