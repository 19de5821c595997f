"""Run a tenant's planned operations through Alembic ``Operations``, or render them as SQL.

Applying happens inside the tenant's transaction on the tenant's connection; the SQL
that runs is captured from that connection alone.  A dry run renders the same
operations through an offline (``as_sql``) MigrationContext and touches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
from sqlalchemy.engine import Connection

from .describe import describe_operation
from .failures import OperationFailed
from .plan import Plan

__all__ = ["apply_plan", "render_plan"]


def apply_plan(conn: Connection, plan: Plan) -> list[str]:
    """Run the plan's operations on ``conn`` and return the SQL statements executed."""
    existing_enums = _existing_enums(conn, plan)
    with _capture_sql(conn) as statements:
        try:
            _run(Operations(plan.context), plan, existing_enums)
        except OperationFailed as exc:
            exc.statements = list(statements)  # up to the one that failed
            raise
    return statements


def render_plan(conn: Connection, plan: Plan) -> list[str]:
    """Return the SQL the plan would run, without running it.

    ``conn`` is only read (to see which enum types the tenant already has).
    """
    statements = _StatementBuffer()
    offline = MigrationContext.configure(
        dialect=conn.dialect,
        opts={"as_sql": True, "output_buffer": statements, "literal_binds": True},
    )
    _run(Operations(offline), plan, _existing_enums(conn, plan))
    return statements.lines


def _run(operations: Operations, plan: Plan, existing_enums: set[str]) -> None:
    _create_missing_enums(operations, plan, existing_enums)
    for op in plan.operations:
        try:
            operations.invoke(op)
        except sa.exc.DBAPIError as exc:
            raise OperationFailed(describe_operation(op), exc) from exc


def _create_missing_enums(operations: Operations, plan: Plan, existing: set[str]) -> None:
    """Create the tenant's missing enum types once, before the operations that use them.

    Alembic creates an enum with its table but not for ``add_column`` or a type
    change, and fails when a second table reuses an existing one.  The names are then
    noted in the DDL runner's memo, which is how SQLAlchemy knows not to create them again.
    """
    needed = {enum.name: enum for enum in _enums_used(plan.operations) if enum.schema is None}
    for name, enum in sorted(needed.items()):
        if name not in existing:
            operations.execute(CreateEnumType(enum))
    runner = operations.impl
    memo = runner.memo.setdefault(f"pg_{ENUM.__visit_name__}", set())  # type: ignore[union-attr]
    memo.update((None, name) for name in needed)


def _enums_used(operations: tuple[ops.MigrateOperation, ...]) -> Iterator[Any]:
    for op in operations:
        if isinstance(op, ops.CreateTableOp):
            types = [column.type for column in op.columns if isinstance(column, sa.Column)]
        elif isinstance(op, ops.AddColumnOp):
            types = [op.column.type]
        elif isinstance(op, ops.AlterColumnOp) and op.modify_type is not None:
            types = [op.modify_type]
        else:
            continue
        for type_ in types:
            if isinstance(type_, sa.Enum) and type_.native_enum and type_.name:
                yield (
                    type_
                    if isinstance(type_, ENUM)
                    else ENUM(*type_.enums, name=type_.name, schema=type_.schema)
                )


def _existing_enums(conn: Connection, plan: Plan) -> set[str]:
    """The tenant's enum types, looked up only when the plan uses an enum at all."""
    if not any(True for _ in _enums_used(plan.operations)):
        return set()
    return _tenant_enum_names(conn, plan.schema)


def _tenant_enum_names(conn: Connection, schema: str) -> set[str]:
    rows = conn.execute(
        sa.text(
            "SELECT t.typname FROM pg_catalog.pg_type t"
            " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = :schema AND t.typtype = 'e'"
        ),
        {"schema": schema},
    )
    return {row[0] for row in rows}


@contextmanager
def _capture_sql(conn: Connection) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(_normalize(str(args[2])))

    # Listening on the Connection (not the Engine) keeps the capture to this tenant's thread.
    event.listen(conn, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(conn, "before_cursor_execute", record)


class _StatementBuffer:
    """The output buffer of an offline MigrationContext: one write per statement."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        statement = _normalize(text)
        if statement:
            self.lines.append(statement)

    def flush(self) -> None:
        pass


def _normalize(statement: str) -> str:
    """Render executed and offline-rendered SQL alike: spaces for tabs, no terminator."""
    return statement.replace("\t", "    ").strip().removesuffix(";").rstrip()
