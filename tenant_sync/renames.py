"""Declared column renames: ``info={"renamed_from": "old_name"}`` on a Column.

(Tables declare theirs the same way: see :mod:`tenant_sync.table_renames`.)

Autogenerate sees a renamed column as a new column and a dropped one: the data would be
lost with the drop, and a NOT NULL new column fails on a table with rows.  A declared
rename is applied per tenant, by what the tenant holds:

* the old name present and the new one absent: ``ALTER TABLE ... RENAME`` (the data
  stays; the class is ``safe``);
* the new name present and the old one gone: nothing to do;
* both present: neither is dropped, whatever the allowed classes; the conflict is
  reported among the withheld changes (a :class:`RenameConflictOp`, never applied),
  with how many values each column holds in that tenant;
* neither: the new one is created, as for any tenant built from scratch (signups).

:func:`obsolete_hints` tells when a hint is no longer needed: no tenant's plan renames
with it, and none has both columns.

No prompt, no migration file: the hint stays in the model as long as some tenant may
still have the old name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from alembic.operations import Operations, ops
from sqlalchemy.engine import Connection

from .sql import MAX_IDENTIFIER_BYTES, quote

__all__ = [
    "RenameColumnOp",
    "RenameConflictOp",
    "apply_renames",
    "count_conflicts",
    "not_null_constraints",
    "obsolete_hints",
    "renamed_from",
    "table_hints",
    "with_not_null_renames",
]


class RenameColumnOp(ops.AlterColumnOp):
    """A declared column rename; on PostgreSQL 18 and later, with the rename of the
    column's NOT NULL constraint (``people_name_not_null``), as ``create_all`` names it."""

    def __init__(
        self, table_name: str, old: str, new: str, not_null: tuple[str, str] | None = None
    ):
        super().__init__(table_name, old, modify_name=new)
        self.not_null = not_null


@Operations.implementation_for(RenameColumnOp)
def _rename_column(operations: Operations, operation: RenameColumnOp) -> None:
    table, old = operation.table_name, operation.column_name
    operations.execute(
        f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(old)} TO {quote(str(operation.modify_name))}"
    )
    if operation.not_null is not None:
        was, becomes = operation.not_null
        operations.execute(
            f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(was)} TO {quote(becomes)}"
        )


_NOT_NULL_SQL = """
SELECT a.attname, k.conname FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
WHERE k.conrelid = CAST(:table AS regclass) AND k.contype = 'n'
"""


def not_null_constraints(conn: Connection, schema: str, table: str) -> dict[str, str]:
    """Column name -> its NOT NULL constraint's name (PostgreSQL 18 and later; else none)."""
    rows = conn.execute(sa.text(_NOT_NULL_SQL), {"table": f"{quote(schema)}.{quote(table)}"})
    return {column: name for column, name in rows}


def with_not_null_renames(
    conn: Connection, schema: str, operations: Sequence[ops.MigrateOperation]
) -> list[ops.MigrateOperation]:
    """``operations`` with each column rename also renaming the column's NOT NULL
    constraint where PostgreSQL named it after the column (``t_old_not_null``)."""
    renamed: list[ops.MigrateOperation] = []
    for op in operations:
        if isinstance(op, RenameColumnOp) and op.not_null is None:
            table, old, new = op.table_name, op.column_name, str(op.modify_name)
            existing = not_null_constraints(conn, schema, table).get(old)
            becomes = f"{table}_{new}_not_null"
            if (
                existing == f"{table}_{old}_not_null"
                and len(becomes.encode()) <= MAX_IDENTIFIER_BYTES
            ):
                op = RenameColumnOp(table, old, new, (existing, becomes))
        renamed.append(op)
    return renamed


class RenameConflictOp(ops.MigrateOperation):
    """A declared rename whose old and new column (or table) both exist: never applied.

    For a table, ``table_name`` is the old table's name.  ``rows`` is what each holds
    in the tenant (values of each column, rows of each table), once counted.
    """

    def __init__(
        self,
        table_name: str,
        old: str,
        new: str,
        kind: str = "column",
        rows: tuple[int, int] | None = None,
    ):
        self.table_name = table_name
        self.old = old
        self.new = new
        self.kind = kind
        self.rows = rows

    def describe(self) -> str:
        """The conflict in words, with what each side holds and what to do about it."""
        if self.kind == "table":
            what, both, unit = f"table {self.old}", "both tables exist", "rows"
        else:
            what, both, unit = (
                f"column {self.table_name}.{self.old}",
                "both columns exist",
                "values",
            )
        held = ""
        if self.rows is not None:
            held = f" ({self.old} holds {self.rows[0]} {unit}, {self.new} {self.rows[1]})"
        return (
            f"rename {what} to {self.new}: {both}{held};"
            f" neither is dropped (move what {self.old} holds, then drop it yourself)"
        )

    def count_statement(self) -> str:
        """A query for ``rows``: what the old and the new side hold."""
        if self.kind == "table":
            return (
                f"SELECT (SELECT count(*) FROM {quote(self.old)}),"
                f" (SELECT count(*) FROM {quote(self.new)})"
            )
        return (
            f"SELECT count({quote(self.old)}), count({quote(self.new)})"
            f" FROM {quote(self.table_name)}"
        )


def count_conflicts(
    conn: Connection, conflicts: Sequence[ops.MigrateOperation]
) -> list[ops.MigrateOperation]:
    """``conflicts`` with what each side holds in the tenant that ``conn``'s search_path names."""
    counted: list[ops.MigrateOperation] = []
    for op in conflicts:
        if isinstance(op, RenameConflictOp):
            old, new = conn.execute(sa.text(op.count_statement())).one()
            op = RenameConflictOp(op.table_name, op.old, op.new, op.kind, (int(old), int(new)))
        counted.append(op)
    return counted


def renamed_from(item: object) -> str | None:
    """The old name a Column declares in ``info["renamed_from"]``, if any."""
    info = getattr(item, "info", None) or {}
    old = info.get("renamed_from")
    return old if isinstance(old, str) and old else None


def apply_renames(
    operations: Sequence[ops.MigrateOperation], metadata: sa.MetaData
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """``(operations, conflicts)``: each declared column rename's add-and-drop pair
    replaced by the rename itself; the drop of an old column (or table) whose new one
    exists, by a conflict."""
    operations = list(operations)
    dropped = {
        (op.table_name, op.column_name)
        for op in operations
        if isinstance(op, ops.DropColumnOp) and op.schema is None
    }
    added = {
        (op.table_name, op.column.name)
        for op in operations
        if isinstance(op, ops.AddColumnOp) and op.schema is None
    }
    renames: dict[tuple[str, str], str] = {}  # (table, new) -> old
    conflicts: dict[tuple[str, str], str] = {}  # (table, old) -> new
    for table, new, old in _hints(metadata):
        if (table, old) in dropped:
            if (table, new) in added:
                renames[(table, new)] = old
            else:
                conflicts[(table, old)] = new
    created = {op.table_name for op in operations if isinstance(op, ops.CreateTableOp)}
    # A dropped old table whose new one the tenant has (it is not created): a conflict.
    table_conflicts = {old: new for old, new in table_hints(metadata) if new not in created}
    renamed_away = {(table, old) for (table, _), old in renames.items()}
    kept: list[ops.MigrateOperation] = []
    for op in operations:
        if isinstance(op, ops.AddColumnOp) and (op.table_name, op.column.name) in renames:
            old = renames[(op.table_name, op.column.name)]
            kept.append(RenameColumnOp(op.table_name, old, op.column.name))
        elif isinstance(op, ops.DropColumnOp) and (op.table_name, op.column_name) in conflicts:
            new = conflicts[(op.table_name, op.column_name)]
            kept.append(RenameConflictOp(op.table_name, op.column_name, new))
        elif (
            isinstance(op, ops.DropTableOp)
            and op.schema is None
            and op.table_name in table_conflicts
        ):
            old = op.table_name
            kept.append(RenameConflictOp(old, old, table_conflicts[old], kind="table"))
        elif not (
            isinstance(op, ops.DropColumnOp) and (op.table_name, op.column_name) in renamed_away
        ):
            kept.append(op)
    return (
        [op for op in kept if not isinstance(op, RenameConflictOp)],
        [op for op in kept if isinstance(op, RenameConflictOp)],
    )


def table_hints(metadata: sa.MetaData) -> list[tuple[str, str]]:
    """``(old, new)`` of every tenant table declaring ``info={"renamed_from": old}``."""
    return [
        (old, table.name)
        for table in metadata.tables.values()
        if table.schema is None
        for old in [renamed_from(table)]
        if old is not None
    ]


def _hints(metadata: sa.MetaData) -> Iterator[tuple[str, str, str]]:
    """(table, new name, old name) of every declared column rename of the tenant tables."""
    for table in metadata.tables.values():
        if table.schema is None:
            for column in table.columns:
                old = renamed_from(column)
                if old is not None:
                    yield table.name, column.name, old


def obsolete_hints(metadata: sa.MetaData, planned: Iterable[str]) -> list[str]:
    """The declared renames that no tenant needs, given every tenant's planned changes in words.

    A hint is needed while some tenant's plan renames with it or reports its conflict.
    """
    words = list(planned)
    columns = [
        f"{table}.{new} (renamed_from={old!r})"
        for table, new, old in _hints(metadata)
        if not any(w.startswith(f"rename column {table}.{old} to {new}") for w in words)
    ]
    tables = [
        f"{new} (renamed_from={old!r})"
        for old, new in table_hints(metadata)
        if not any(w.startswith(f"rename table {old} to {new}") for w in words)
    ]
    return [*tables, *columns]
