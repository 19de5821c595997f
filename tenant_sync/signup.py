"""Signup without reflection: build a new tenant from the plan of an empty schema.

Every new tenant schema starts empty, so every signup needs the same operations.  The
first signup of a :class:`~tenant_sync.TenantSync` compares its new, empty schema with
the model (Alembic autogenerate, whose reflection scans the whole catalog: seconds at
thousands of tenants) and keeps the rendered SQL in a :class:`SignupPlan`.  Later
signups run that SQL in one round trip: ``BEGIN``, the tenant's lock, ``CREATE SCHEMA``,
a recheck that the schema is empty, the SQL, the version row, ``COMMIT``.

A schema that already exists is used only if it is empty (the application may create
schemas itself); anything else, and any failure of the kept SQL, falls back to the
full comparison, which names the precise problem (and, when it creates the schema,
plans afresh what is kept).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .batch import run_transaction, sqlstate
from .fingerprint import SHAPE_CHANGED_SQLSTATE, Shape, recheck_statement
from .locking import lock_statement, quote
from .options import SyncOptions
from .plan import ignored_tables
from .version import version_statements

__all__ = ["EMPTY_SCHEMA", "SignupPlan", "build_from_plan"]

#: The shape of a schema with nothing in it: no relation, no type, no version table.
EMPTY_SCHEMA = Shape(fingerprint="", relations=(), enum_types=(), has_version_table=False)

_DUPLICATE_SCHEMA_SQLSTATE = "42P06"


class SignupPlan:
    """The operations and SQL that build an empty schema into the model; thread-safe.

    Empty until the first signup that creates a schema and compares it, and renewed by
    every such comparison; kept for the life of its TenantSync, whose model and options
    it was planned for.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def get(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """``(operations, sql)`` if known, else None."""
        with self._lock:
            return self._plan

    def remember(self, operations: list[str], sql: list[str]) -> None:
        """Keep the plan found for an empty schema (its operations in words, its SQL)."""
        with self._lock:
            self._plan = (tuple(operations), tuple(sql))


def build_from_plan(
    engine: Engine, schema: str, plan: SignupPlan, fingerprint: str, options: SyncOptions
) -> tuple[list[str], list[str]] | None:
    """Build ``schema`` from the kept plan in one transaction; return (operations, sql) or None.

    None means the tenant needs the full comparison: there is no kept plan, or the
    schema exists and is not empty (or the role may not create in it).  Any other
    error is raised, the transaction rolled back.
    """
    kept = plan.get()
    if kept is None:
        return None
    operations, sql = kept
    create = f"CREATE SCHEMA {quote(schema)}"
    try:
        run_transaction(engine, _statements(schema, [create], sql, fingerprint, options))
        return [f"create schema {schema}", *operations], [create, *sql]
    except sa.exc.DBAPIError as exc:
        if sqlstate(exc) == SHAPE_CHANGED_SQLSTATE:
            return None
        if sqlstate(exc) != _DUPLICATE_SCHEMA_SQLSTATE:
            raise
    # Someone else created the schema (the application, or a concurrent signup that
    # has committed by now): build it if it is still empty.
    try:
        run_transaction(engine, _statements(schema, [], sql, fingerprint, options))
        return list(operations), list(sql)
    except sa.exc.DBAPIError as exc:
        if sqlstate(exc) == SHAPE_CHANGED_SQLSTATE:
            return None
        raise


def _statements(
    schema: str,
    creating: Sequence[str],
    sql: Sequence[str],
    fingerprint: str,
    options: SyncOptions,
) -> list[str]:
    """Lock, create (``creating``: the CREATE SCHEMA, or nothing), check empty, build, record."""
    return [
        lock_statement(schema, options.lock_timeout, options.statement_timeout),
        *creating,
        recheck_statement(schema, EMPTY_SCHEMA, ignored_tables(options)),
        *sql,
        *version_statements(schema, options.version_table, fingerprint),
    ]
