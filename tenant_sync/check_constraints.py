"""CHECK constraints, which Alembic autogenerate does not compare: by name and definition.

The model's CHECKs come from its state as PostgreSQL builds it (see
:mod:`tenant_sync.yardstick`), a tenant's from its own state, both rendered by
``pg_get_constraintdef()``, so the two compare as text.

For each table the tenant and the model share: a CHECK the tenant lacks is added, one
whose definition differs is dropped and added again, and a CHECK the model no longer
has is dropped.  Tables the plan creates get theirs from ``CREATE TABLE``.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from alembic.operations import ops

from .not_valid import only_not_valid
from .yardstick import State, tables_of

__all__ = ["compare_checks"]


def compare_checks(
    tenant: State, model: State, skip_tables: Collection[str], unusable: Collection[str] = ()
) -> list[ops.MigrateOperation]:
    """The operations that make the tenant's CHECKs equal to the model's.

    ``skip_tables`` are the tables the plan creates.  A CHECK whose model definition
    contains one of ``unusable`` (enum values the plan cannot use) is left as it is.
    """
    have, wanted = _checks(tenant), _checks(model)
    for key, definition in list(wanted.items()):
        if any(value in definition for value in unusable):
            wanted.pop(key)
            have.pop(key, None)
    for key, definition in list(have.items()):
        if only_not_valid(definition, wanted.get(key)):  # validated instead (see not_valid.py)
            have.pop(key)
            wanted.pop(key, None)
    shared = tables_of(tenant) - set(skip_tables)
    operations: list[ops.MigrateOperation] = []
    for (table, name), definition in sorted(have.items()):
        if table in shared and wanted.get((table, name)) != definition:
            operations.append(ops.DropConstraintOp(name, table, type_="check"))
    for (table, name), definition in sorted(wanted.items()):
        if table in shared and have.get((table, name)) != definition:
            operations.append(ops.CreateCheckConstraintOp(name, table, sa.text(_body(definition))))
    return operations


def _checks(state: State) -> dict[tuple[str, str], str]:
    """(table, constraint name) -> definition, e.g. ``CHECK ((amount > 0))``."""
    return {
        (table, name): definition
        for (kind, table, name), definition in state.items()
        if kind == "constraint" and table is not None and definition.startswith("CHECK ")
    }


def _body(definition: str) -> str:
    """``CHECK ((amount > 0))`` -> ``(amount > 0)``: the condition Alembic's op takes.

    The outer parentheses are the CHECK's own syntax, always written by PostgreSQL.
    """
    body = definition.removesuffix(" NOT VALID").removeprefix("CHECK ")
    return body[1:-1] if body.startswith("(") and body.endswith(")") else body
