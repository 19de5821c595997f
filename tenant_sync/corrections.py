"""Corrections to Alembic autogenerate's plan, so that a tenant ends equal to ``create_all``.

Each is a place where the operations autogenerate proposes, run as they come, leave a
tenant other than ``metadata.create_all`` would build it, or fail:

* a UNIQUE constraint on exactly the primary key's columns: PostgreSQL's
  ``CREATE TABLE`` folds it into the primary key, so ``create_all`` never has it, and
  autogenerate proposes it on every run;
* foreign keys declared ``use_alter=True`` (tables that reference each other):
  ``create_table`` leaves them out, as ``create_all`` does before adding them with
  ``ALTER TABLE``, which autogenerate does not do;
* a column added with ``unique=True`` or ``index=True``: Alembic's
  ``add_column`` creates those with the column, and autogenerate proposes each once
  more, so the index fails as a duplicate and the constraints are made twice;
* a new table with a foreign key to a column that the same plan adds to an existing
  table: autogenerate orders new tables first, so the foreign key names a column that
  is not there yet;
* a new table's constraints come in no fixed order (Alembic lists them from a set), so
  one plan's SQL differed from one process to the next, and so did the fingerprint its
  tenants' memos record (see :mod:`tenant_sync.fastpath.memo`): they come in the order
  the model declares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from .describe import table_of
from .model import Model

__all__ = ["correct_plan"]


def correct_plan(
    operations: Sequence[ops.MigrateOperation], model: Model
) -> list[ops.MigrateOperation]:
    """The leaf operations of a tenant's plan, corrected as this module describes."""
    added = _added_columns(operations)
    kept = [
        op
        for op in operations
        if not _folded_into_primary_key(op, model) and not _made_with_its_column(op, added)
    ]
    kept += _deferred_foreign_keys(kept, model)
    for op in kept:
        if isinstance(op, ops.CreateTableOp):
            op.columns = _in_declared_order(op.columns)
    return _new_tables_after_their_targets(kept)


def _in_declared_order(items: Sequence[Any]) -> list[Any]:
    """A new table's columns as they are, then its constraints in the model's order."""
    columns = [item for item in items if isinstance(item, sa.Column)]
    constraints = [item for item in items if not isinstance(item, sa.Column)]
    return columns + sorted(constraints, key=lambda item: getattr(item, "_creation_order", 0))


def _folded_into_primary_key(op: ops.MigrateOperation, model: Model) -> bool:
    if not isinstance(op, ops.CreateUniqueConstraintOp) or op.schema is not None:
        return False
    table = model.metadata.tables.get(op.table_name)
    if table is None:
        return False
    primary = {column.name for column in table.primary_key.columns}
    return bool(primary) and set(op.columns) == primary


def _added_columns(
    operations: Sequence[ops.MigrateOperation],
) -> dict[tuple[str, str], sa.Column[Any]]:
    return {
        (op.table_name, op.column.name): op.column
        for op in operations
        if isinstance(op, ops.AddColumnOp) and op.schema is None
    }


def _made_with_its_column(
    op: ops.MigrateOperation, added: dict[tuple[str, str], sa.Column[Any]]
) -> bool:
    """True for an index or constraint that ``add_column`` of a column makes by itself."""
    if isinstance(op, ops.CreateIndexOp):
        names = [getattr(column, "name", column) for column in op.columns]
        column = added.get((op.table_name, str(names[0]))) if len(names) == 1 else None
        return column is not None and bool(column.index) and bool(op.unique) == bool(column.unique)
    if isinstance(op, ops.CreateUniqueConstraintOp):
        column = added.get((op.table_name, op.columns[0])) if len(op.columns) == 1 else None
        return column is not None and bool(column.unique) and not column.index
    return False


def _deferred_foreign_keys(
    operations: Sequence[ops.MigrateOperation], model: Model
) -> list[ops.MigrateOperation]:
    """An ``add foreign key`` for each ``use_alter`` foreign key of a table the plan creates."""
    added: list[ops.MigrateOperation] = []
    for op in operations:
        if not isinstance(op, ops.CreateTableOp) or op.schema is not None:
            continue
        table = model.metadata.tables.get(op.table_name)
        if table is None:
            continue
        for constraint in sorted(table.foreign_key_constraints, key=_constraint_order):
            if constraint.use_alter:
                added.append(ops.CreateForeignKeyOp.from_constraint(constraint))
    return added


def _constraint_order(constraint: sa.ForeignKeyConstraint) -> tuple[str, ...]:
    return (str(constraint.name or ""), *constraint.column_keys)


def _new_tables_after_their_targets(
    operations: list[ops.MigrateOperation],
) -> list[ops.MigrateOperation]:
    """Move each new table that references a table the plan alters after that table's changes.

    The new table's own operations (its indexes, comments, foreign keys) move with it,
    in their order.
    """
    new = {
        op.table_name: _referenced_tables(op)
        for op in operations
        if isinstance(op, ops.CreateTableOp) and op.schema is None
    }
    altered = {table_of(op) for op in operations if not isinstance(op, ops.CreateTableOp)}
    moved_tables: set[str] = set()
    # A new table moves if it references an existing table the plan alters, or a new
    # table that moves.
    targets = {name for name in altered if name is not None} - set(new)
    while True:
        moving = {name for name, referenced in new.items() if referenced & targets} - moved_tables
        if not moving:
            break
        moved_tables |= moving
        targets |= moving
    if not moved_tables:
        return operations
    stay = [op for op in operations if table_of(op) not in moved_tables]
    move = [op for op in operations if table_of(op) in moved_tables]
    return stay + move


def _referenced_tables(op: ops.CreateTableOp) -> set[str]:
    """The tenant tables (not shared ones) that ``op``'s foreign keys reference."""
    keys: list[sa.ForeignKey] = []
    for item in op.columns:
        if isinstance(item, sa.ForeignKeyConstraint):
            keys.extend(item.elements)
        elif isinstance(item, sa.Column):
            keys.extend(item.foreign_keys)
    parts = (key.target_fullname.split(".") for key in keys)
    return {part[0] for part in parts if len(part) == 2 and part[0] != op.table_name}
