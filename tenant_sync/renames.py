"""Declared column renames: ``info={"renamed_from": "old_name"}`` on a Column.

Autogenerate sees a renamed column as a new column and a dropped one: the data would be
lost with the drop, and a NOT NULL new column fails on a table with rows.  A declared
rename is applied per tenant, by what the tenant holds:

* the old name present and the new one absent: ``ALTER TABLE ... RENAME`` (the data
  stays; the class is ``safe``);
* the new name present: nothing to do (the old one, if still there, is left to the
  usual withheld drop);
* neither: the new one is created, as for any tenant built from scratch (signups).

No prompt, no migration file: the hint stays in the model as long as some tenant may
still have the old name.  Tables are not renamed yet: a renamed table keeps its old
constraint, index and sequence names, so it would not equal ``create_all``; a table
hint is ignored, and the old table is left to the usual withheld drop.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.operations import ops

__all__ = ["apply_renames", "renamed_from"]


def renamed_from(item: object) -> str | None:
    """The old name a Column declares in ``info["renamed_from"]``, if any."""
    info = getattr(item, "info", None) or {}
    old = info.get("renamed_from")
    return old if isinstance(old, str) and old else None


def apply_renames(operations: Sequence[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    """Replace each declared rename's add-and-drop pair with the rename itself."""
    return _rename_columns(list(operations))


def _rename_columns(operations: list[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    dropped = {
        (op.table_name, op.column_name)
        for op in operations
        if isinstance(op, ops.DropColumnOp) and op.schema is None
    }
    renames: dict[tuple[str, str], str] = {}
    for op in operations:
        if isinstance(op, ops.AddColumnOp) and op.schema is None:
            old = renamed_from(op.column)
            if old is not None and (op.table_name, old) in dropped:
                renames[(op.table_name, op.column.name)] = old
    if not renames:
        return operations
    gone = {(table, old) for (table, _), old in renames.items()}
    kept: list[ops.MigrateOperation] = []
    for op in operations:
        if isinstance(op, ops.AddColumnOp) and (op.table_name, op.column.name) in renames:
            old = renames[(op.table_name, op.column.name)]
            kept.append(ops.AlterColumnOp(op.table_name, old, modify_name=op.column.name))
        elif isinstance(op, ops.DropColumnOp) and (op.table_name, op.column_name) in gone:
            continue
        else:
            kept.append(op)
    return kept
