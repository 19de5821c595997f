"""Declared column renames: ``info={"renamed_from": "old_name"}`` on a Column.

Autogenerate sees a renamed column as a new column and a dropped one: the data would be
lost with the drop, and a NOT NULL new column fails on a table with rows.  A declared
rename is applied per tenant, by what the tenant holds:

* the old name present and the new one absent: ``ALTER TABLE ... RENAME`` (the data
  stays; the class is ``safe``);
* the new name present and the old one gone: nothing to do;
* both present: neither is dropped, whatever the allowed classes; the conflict is
  reported among the withheld changes (a :class:`RenameConflictOp`, never applied);
* neither: the new one is created, as for any tenant built from scratch (signups).

:func:`obsolete_hints` tells when a hint is no longer needed: no tenant's plan renames
with it, and none has both columns.

No prompt, no migration file: the hint stays in the model as long as some tenant may
still have the old name.  Tables are not renamed yet: a renamed table keeps its old
constraint, index and sequence names, so it would not equal ``create_all``; a table
hint is ignored, and the old table is left to the usual withheld drop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from alembic.operations import ops

__all__ = ["RenameConflictOp", "apply_renames", "obsolete_hints", "renamed_from"]


class RenameConflictOp(ops.MigrateOperation):
    """A declared rename whose old and new columns both exist in the tenant: never applied."""

    def __init__(self, table_name: str, old: str, new: str):
        self.table_name = table_name
        self.old = old
        self.new = new

    def describe(self) -> str:
        """The conflict in words, with what to do about it."""
        return (
            f"rename column {self.table_name}.{self.old} to {self.new}: both columns exist;"
            f" neither is dropped (move what {self.old} holds, then drop it yourself)"
        )


def renamed_from(item: object) -> str | None:
    """The old name a Column declares in ``info["renamed_from"]``, if any."""
    info = getattr(item, "info", None) or {}
    old = info.get("renamed_from")
    return old if isinstance(old, str) and old else None


def apply_renames(
    operations: Sequence[ops.MigrateOperation], metadata: sa.MetaData
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """``(operations, conflicts)``: each declared rename's add-and-drop pair replaced by
    the rename itself; the drop of an old column whose new one exists, by a conflict."""
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
    kept: list[ops.MigrateOperation] = []
    for op in operations:
        if isinstance(op, ops.AddColumnOp) and (op.table_name, op.column.name) in renames:
            old = renames[(op.table_name, op.column.name)]
            kept.append(ops.AlterColumnOp(op.table_name, old, modify_name=op.column.name))
        elif isinstance(op, ops.DropColumnOp) and (op.table_name, op.column_name) in conflicts:
            new = conflicts[(op.table_name, op.column_name)]
            kept.append(RenameConflictOp(op.table_name, op.column_name, new))
        elif not (
            isinstance(op, ops.DropColumnOp)
            and (op.table_name, op.column_name) in {(t, o) for (t, _), o in renames.items()}
        ):
            kept.append(op)
    return (
        [op for op in kept if not isinstance(op, RenameConflictOp)],
        [op for op in kept if isinstance(op, RenameConflictOp)],
    )


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
    return [
        f"{table}.{new} (renamed_from={old!r})"
        for table, new, old in _hints(metadata)
        if not any(w.startswith(f"rename column {table}.{old} to {new}") for w in words)
    ]
