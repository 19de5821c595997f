"""Indexes of existing tables, compared by their definition as PostgreSQL renders it.

Autogenerate compares indexes by columns and uniqueness only: a changed predicate
(``WHERE``), method (``USING gin``), expression or operator class goes unseen, and an
expression index it cannot compare is proposed again, where it exists.  So for the
tables a tenant and the model share, tenant_sync plans indexes itself from the two
states (see :mod:`tenant_sync.yardstick`): an index the tenant lacks is created with the
model's own ``pg_get_indexdef()`` text, one whose definition differs is dropped and
created again, and one the model lacks is dropped.  Autogenerate's index operations
on those tables are left out; tables the plan creates keep them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from alembic.operations import Operations, ops

if TYPE_CHECKING:
    from .yardstick import State

__all__ = ["CreateIndexFromDefinitionOp", "compare_indexes", "without_index_ops"]


_PLAIN_BTREE = re.compile(r" USING btree \(([^()]*)\)$")
_IDENTIFIER = re.compile(r'[a-z_][a-z0-9_$]*|"(?:[^"]|"")+"')


class CreateIndexFromDefinitionOp(ops.MigrateOperation):
    """``CREATE INDEX`` as PostgreSQL rendered it for the model, run in the tenant."""

    def __init__(self, index_name: str, table_name: str, definition: str):
        self.index_name = index_name
        self.table_name = table_name
        self.definition = definition
        self.unique = definition.startswith("CREATE UNIQUE ")

    @property
    def plain_columns(self) -> list[str]:
        """The key columns of a btree index on plain columns, else ``[]`` (expressions,
        a predicate, INCLUDE: what the dry run cannot check as simply)."""
        match = _PLAIN_BTREE.search(self.definition)
        if match is None:
            return []
        names = match.group(1).split(", ")
        if not all(_IDENTIFIER.fullmatch(name) for name in names):
            return []
        return [name[1:-1].replace('""', '"') if name.startswith('"') else name for name in names]

    def describe(self) -> str:
        """The operation in words: ``create index ix_t on t (a) WHERE ...`` (btree unsaid)."""
        unique = "unique " if self.unique else ""
        target = self.definition.split(" ON ", 1)[-1].replace(" USING btree ", " ", 1)
        return f"create {unique}index {self.index_name} on {target}"


@Operations.implementation_for(CreateIndexFromDefinitionOp)
def _create_index(operations: Operations, operation: CreateIndexFromDefinitionOp) -> None:
    operations.execute(operation.definition)


def without_index_ops(
    operations: Iterable[ops.MigrateOperation], shared_tables: Collection[str]
) -> list[ops.MigrateOperation]:
    """``operations`` less autogenerate's index operations on ``shared_tables``."""
    return [
        op
        for op in operations
        if not (
            isinstance(op, ops.CreateIndexOp | ops.DropIndexOp)
            and op.table_name in shared_tables
            and op.schema is None
        )
    ]


def compare_indexes(
    tenant: State,
    model: State,
    shared_tables: Collection[str],
    made_with_columns: Collection[str],
    unusable: Collection[str] = (),
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """``(drops, creates)`` that make the indexes of ``shared_tables`` equal to the model's.

    ``made_with_columns`` names the indexes that columns the plan adds create themselves.
    An index whose model definition contains one of ``unusable`` (enum values the plan
    cannot use, see :func:`~tenant_sync.enum_labels.unusable_enum_values`) is left as
    it is.  Drops run first in the plan (before a column they cover goes), creates last.
    """
    have, wanted = _indexes(tenant, shared_tables), _indexes(model, shared_tables)
    for key, definition in list(wanted.items()):
        if any(value in definition for value in unusable):
            wanted.pop(key)
            have.pop(key, None)
    drops: list[ops.MigrateOperation] = []
    creates: list[ops.MigrateOperation] = []
    for (table, name), definition in sorted(have.items()):
        if wanted.get((table, name)) != definition:
            drops.append(ops.DropIndexOp(name, table_name=table))
    for (table, name), definition in sorted(wanted.items()):
        if have.get((table, name)) != definition and name not in made_with_columns:
            creates.append(CreateIndexFromDefinitionOp(name, table, definition))
    return drops, creates


def _indexes(state: State, tables: Collection[str]) -> dict[tuple[str, str], str]:
    return {
        (table, name): definition
        for (kind, table, name), definition in state.items()
        if kind == "index" and table is not None and table in tables
    }
