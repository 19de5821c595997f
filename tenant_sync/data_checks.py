"""Read-only questions a dry run asks each tenant: would a ``data_dependent`` change fail here?

A change set is planned once per shape, but whether SET NOT NULL, a new UNIQUE or
FOREIGN KEY, or a NOT NULL column without a default succeeds depends on each tenant's
rows; a new table or index fails where a relation of its name is already there.  For
each such operation :func:`data_checks` writes one ``count(*)`` query (unqualified
names: the tenant's search_path finds its tables), and :func:`run_checks` asks them
all of one tenant in one statement.  A dry run reports a tenant whose count is not zero
as ``failed``, with the operation and how many rows are in the way; the real sync then
fails exactly those tenants, rolled back.

Tables the same plan creates are empty, and columns it adds hold only their default,
so operations on them are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import Connection

from .describe import describe_operation, table_of
from .indexes import CreateIndexFromDefinitionOp
from .sql import literal, quote

__all__ = ["DataCheck", "data_checks", "run_checks"]


@dataclass(frozen=True)
class DataCheck:
    """One question: how many rows (or relations) stand in the way of one operation."""

    operation: str
    count_sql: str
    #: What is counted, with ``{s}`` where the plural takes an "s".
    what: str

    def failure(self, count: int) -> str:
        """The error of a tenant where ``count`` rows are in the way."""
        what = self.what.format(s="" if count == 1 else "s")
        return f"'{self.operation}' would fail: {count:,} {what}"


def data_checks(operations: Sequence[ops.MigrateOperation]) -> tuple[DataCheck, ...]:
    """The checks of ``operations`` (a tenant's plan, in order)."""
    new_tables = {op.table_name for op in operations if isinstance(op, ops.CreateTableOp)}
    new_columns = {
        (op.table_name, op.column.name) for op in operations if isinstance(op, ops.AddColumnOp)
    }
    checks: list[DataCheck] = []
    for op in operations:
        table = table_of(op)
        if table is None or getattr(op, "schema", None) is not None:
            continue
        if isinstance(op, (ops.CreateTableOp, ops.CreateIndexOp)):
            checks.extend(_name_taken(op))
        if table in new_tables:
            continue
        checks.extend(_row_checks(op, table, new_columns))
    return tuple(checks)


def run_checks(conn: Connection, checks: Sequence[DataCheck]) -> list[str]:
    """Ask every check in one statement on ``conn`` (set up for the tenant); the failures."""
    if not checks:
        return []
    select = "SELECT " + ", ".join(f"({check.count_sql})" for check in checks)
    counts = conn.execute(sa.text(select)).one()
    return [check.failure(count) for check, count in zip(checks, counts, strict=True) if count]


def _name_taken(op: ops.CreateTableOp | ops.CreateIndexOp) -> Iterator[DataCheck]:
    name = op.table_name if isinstance(op, ops.CreateTableOp) else op.index_name
    if name is None:
        return
    yield DataCheck(
        describe_operation(op),
        "SELECT count(*) FROM pg_catalog.pg_class"
        f" WHERE relnamespace = CAST(current_schema() AS regnamespace) AND relname = {literal(name)}",
        f"relation{{s}} named {name} already there",
    )


def _row_checks(
    op: ops.MigrateOperation, table: str, new_columns: set[tuple[str, str]]
) -> Iterator[DataCheck]:
    described = describe_operation(op)
    source = quote(table)
    if isinstance(op, ops.AddColumnOp):
        column = op.column
        if not column.nullable and column.server_default is None:
            yield DataCheck(described, f"SELECT count(*) FROM {source}", "row{s}, and no default")
        return
    if isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False:
        if (table, op.column_name) not in new_columns:
            yield DataCheck(
                described,
                f"SELECT count(*) FROM {source} WHERE {quote(op.column_name)} IS NULL",
                "row{s} with NULL",
            )
        return
    columns = _unique_columns(op)
    if columns and not any((table, column) in new_columns for column in columns):
        listed = ", ".join(map(quote, columns))
        present = " AND ".join(f"{quote(column)} IS NOT NULL" for column in columns)
        yield DataCheck(
            described,
            f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {present}"
            f" GROUP BY {listed} HAVING count(*) > 1) AS duplicates",
            "value{s} held by more than one row",
        )
    if isinstance(op, ops.CreateForeignKeyOp):
        yield from _foreign_key_check(op, described, table, new_columns)
    if isinstance(op, ops.CreateCheckConstraintOp):
        yield DataCheck(
            described,
            f"SELECT count(*) FROM {source} WHERE NOT coalesce({op.condition}, true)",
            "row{s} that break it",
        )


def _unique_columns(op: ops.MigrateOperation) -> list[str]:
    if isinstance(op, ops.CreateUniqueConstraintOp):
        return list(op.columns)
    if isinstance(op, CreateIndexFromDefinitionOp) and op.unique:
        return op.plain_columns
    if isinstance(op, ops.CreateIndexOp) and op.unique:
        # An expression index has no plain column names: not checked.
        names = [getattr(column, "name", column) for column in op.columns]
        return [str(name) for name in names] if all(isinstance(n, str) for n in names) else []
    return []


def _foreign_key_check(
    op: ops.CreateForeignKeyOp, described: str, table: str, new_columns: set[tuple[str, str]]
) -> Iterator[DataCheck]:
    if any((table, column) in new_columns for column in op.local_cols):
        return
    schema = op.kw.get("referent_schema")
    target = f"{quote(schema)}.{quote(op.referent_table)}" if schema else quote(op.referent_table)
    present = " AND ".join(f"s.{quote(column)} IS NOT NULL" for column in op.local_cols)
    match = " AND ".join(
        f"r.{quote(remote)} = s.{quote(local)}"
        for local, remote in zip(op.local_cols, op.remote_cols, strict=True)
    )
    yield DataCheck(
        described,
        f"SELECT count(*) FROM {quote(table)} AS s WHERE {present}"
        f" AND NOT EXISTS (SELECT 1 FROM {target} AS r WHERE {match})",
        f"row{{s}} with no match in {op.referent_table}",
    )
