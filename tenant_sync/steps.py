"""Data steps: Python code that runs once in each tenant, between the schema changes it needs.

A step is a function registered with :meth:`TenantSync.step <tenant_sync.TenantSync.step>`
under a name of its own::

    @ts.step("2026-12 fill customers.full_name", before="data_dependent", batch_size=5000)
    def fill_full_name(conn, tenant):
        return conn.execute(text(
            "UPDATE customers SET full_name = name WHERE id IN"
            " (SELECT id FROM customers WHERE full_name IS NULL LIMIT :n)"
        ), {"n": tenant.batch_size}).rowcount

``before`` places it among the tenant's changes by class (see :mod:`tenant_sync.classes`):
it runs after the changes of the classes below ``before`` and before the others, so one
sync can expand (add ``full_name``), backfill (the step), then contract (SET NOT NULL,
drop ``name``).  ``before=None`` runs it after every change.  While a tenant has a step
to run, a NOT NULL column that the changes add without a default is added nullable and
then set NOT NULL, a ``data_dependent`` change, so that a step can fill it in between.

A step runs in a transaction of its own, under the tenant's lock, ``search_path`` set to
the tenant (``conn`` is a SQLAlchemy connection in that transaction): the changes before
it are committed first, so a long backfill holds no lock a schema change took.  With
``batch_size`` it is called again and again, each call in a transaction of its own that
commits, until a call returns a number of rows below ``batch_size``: written so that a
call skips the rows done, it resumes where it stopped after a crash or a kill.

A step is recorded as done in the tenant's history (see :mod:`tenant_sync.history`) in
the transaction that finishes it, and is never run again for that tenant.  A new tenant
(a schema that holds none of the model's tables yet) records it as done without running
it (``on_signup="skip"``), or runs it after building its tables, in the same transaction
(``on_signup="run"``, for seed data).  A step that fails fails its tenant alone: its error
is the tenant's, what was committed before it stays, and the tenant's later steps and
changes wait for a rerun.  A dry run lists, per tenant, the steps that would run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .classes import CHANGE_CLASSES, ChangeClass
from .engine import connect
from .errors import ConfigurationError
from .options import HISTORY_TABLE
from .sql import quote

__all__ = [
    "SKIPPED_AT_SIGNUP",
    "OnSignup",
    "Step",
    "StepFunction",
    "StepTenant",
    "Steps",
    "done_steps_of",
    "new_step",
    "pending_steps",
    "register_step",
]

#: What a new tenant does with a step: record it as done, or run it.
OnSignup = Literal["skip", "run"]

#: How a new tenant's history words a step it records as done without running it.
SKIPPED_AT_SIGNUP = "not run: recorded as done at signup (on_signup='skip')"

#: Schemas whose history one query reads.
_DONE_QUERY_CHUNK = 200


@dataclass(frozen=True)
class StepTenant:
    """The ``tenant`` a step function gets: which tenant, and which call of a batched step.

    :ivar schema: the tenant schema (``search_path`` points at it).
    :ivar batch_size: the step's ``batch_size``, or None for a step that runs in one call.
    :ivar batch: how many calls of this step this run made in the tenant before this one.
    :ivar new: True for a new tenant (``on_signup="run"``): its tables were just built.
    """

    schema: str
    batch_size: int | None = None
    batch: int = 0
    new: bool = False

    def __str__(self) -> str:
        return self.schema


#: A step's function: gets the tenant's connection and a :class:`StepTenant`; a batched
#: step returns how many rows its call changed.
StepFunction = Callable[[Connection, StepTenant], object]


@dataclass(frozen=True)
class Step:
    """One registered data step (see the module's documentation)."""

    name: str
    function: StepFunction
    before: ChangeClass | None = "data_dependent"
    batch_size: int | None = None
    on_signup: OnSignup = "skip"

    @property
    def rank(self) -> int:
        """Where the step runs: after the changes whose class ranks below this."""
        return len(CHANGE_CLASSES) if self.before is None else CHANGE_CLASSES.index(self.before)

    def finished(self, returned: object) -> bool:
        """Whether a call that returned ``returned`` was the step's last."""
        if self.batch_size is None:
            return True
        if isinstance(returned, bool) or not isinstance(returned, int):
            raise TypeError(
                f"a step with batch_size must return how many rows its call changed,"
                f" got {returned!r}"
            )
        return returned < self.batch_size


def new_step(
    name: object,
    function: object,
    before: object,
    batch_size: object,
    on_signup: object,
    registered: Iterable[Step],
) -> Step:
    """A checked :class:`Step`; a bad argument raises a one-line ConfigurationError."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a step needs a name, a non-empty string; got {name!r}")
    if any(step.name == name for step in registered):
        raise ConfigurationError(f"a step named {name!r} is already registered")
    if not callable(function):
        raise ConfigurationError(f"step {name!r}: {function!r} is not a function")
    if before is not None and before not in CHANGE_CLASSES:
        classes = ", ".join(repr(change_class) for change_class in CHANGE_CLASSES)
        raise ConfigurationError(
            f"step {name!r}: before must be one of {classes} or None, got {before!r}"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigurationError(
            f"step {name!r}: batch_size must be a positive integer or None, got {batch_size!r}"
        )
    if on_signup not in get_args(OnSignup):
        raise ConfigurationError(
            f"step {name!r}: on_signup must be 'skip' or 'run', got {on_signup!r}"
        )
    return Step(name, function, before, batch_size, on_signup)  # type: ignore[arg-type]


StepFunctionT = TypeVar("StepFunctionT", bound=StepFunction)


class Steps:
    """Data steps registered in a module of the application, apart from any TenantSync:
    ``TenantSync(..., steps=steps)`` runs them, and so does the command line
    (``tenant-sync sync --steps myapp.steps:steps``)::

        steps = Steps()

        @steps.step("2026-12 fill customers.full_name", batch_size=5000)
        def fill_full_name(conn, tenant): ...
    """

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self._steps: list[Step] = []
        for step in steps:
            register_step(self._steps, step.name, step.before, step.batch_size, step.on_signup)(
                step.function
            )

    def step(
        self,
        name: str,
        *,
        before: ChangeClass | None = "data_dependent",
        batch_size: int | None = None,
        on_signup: OnSignup = "skip",
    ) -> Callable[[StepFunctionT], StepFunctionT]:
        """Register a data step: a function that runs once in each tenant (a decorator).

        ``fn(conn, tenant)`` runs in a transaction of its own, ``search_path`` set to the
        tenant, after the changes of the classes below ``before`` (None: after every
        change) and before the others; the step is recorded in the tenant's history and
        never runs there again.  With ``batch_size``, it is called until a call returns
        fewer rows than that, each call committed.  A new tenant records it as done
        (``on_signup="skip"``) or runs it (``"run"``).  See the module's documentation.

        :raises ConfigurationError: a bad argument, or a name registered already.
        """
        return register_step(self._steps, name, before, batch_size, on_signup)

    def __iter__(self) -> Iterator[Step]:
        return iter(tuple(self._steps))

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        return f"<Steps {', '.join(repr(step.name) for step in self._steps) or 'none'}>"


def register_step(
    registered: list[Step],
    name: str,
    before: ChangeClass | None,
    batch_size: int | None,
    on_signup: OnSignup,
) -> Callable[[StepFunctionT], StepFunctionT]:
    """A decorator that appends the checked step to ``registered``; its arguments are
    checked at once, before there is a function."""
    new_step(name, print, before, batch_size, on_signup, registered)

    def register(function: StepFunctionT) -> StepFunctionT:
        registered.append(new_step(name, function, before, batch_size, on_signup, registered))
        return function

    return register


def pending_steps(steps: Iterable[Step], done: Iterable[str], new: bool) -> tuple[Step, ...]:
    """The steps a tenant that has done ``done`` would run; for a new one, those it runs
    at signup (``on_signup="run"``)."""
    finished = set(done)
    return tuple(
        step for step in steps if step.name not in finished and (not new or step.on_signup == "run")
    )


def done_steps_of(engine: Engine, schemas: Iterable[str]) -> dict[str, set[str]]:
    """Each of ``schemas``' done steps, as its history records them: a few queries in all,
    not one per tenant (schemas without a history have none)."""
    done: dict[str, set[str]] = {}
    with connect(engine) as conn, conn.begin():
        with_history = _with_history(conn, list(schemas))
        for start in range(0, len(with_history), _DONE_QUERY_CHUNK):
            chunk = with_history[start : start + _DONE_QUERY_CHUNK]
            query = " UNION ALL ".join(
                f"SELECT CAST(:s{number} AS text), step FROM {quote(schema)}.{quote(HISTORY_TABLE)}"
                " WHERE step IS NOT NULL"
                for number, schema in enumerate(chunk)
            )
            params = {f"s{number}": schema for number, schema in enumerate(chunk)}
            for schema, step in conn.execute(sa.text(query), params):
                done.setdefault(schema, set()).add(step)
    return done


def _with_history(conn: Connection, schemas: list[str]) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT n.nspname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = :table AND n.nspname = ANY(CAST(:schemas AS text[]))"
        ),
        {"table": HISTORY_TABLE, "schemas": schemas},
    )
    return sorted(rows.scalars())
