"""Diff one tenant against the model with Alembic autogenerate; split off destructive changes.

Each tenant gets its own :class:`~alembic.runtime.migration.MigrationContext` on its own
connection (never Alembic's module-global ``context`` proxy, which is not thread-safe).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from .corrections import correct_plan
from .describe import describe_operation
from .enum_labels import compare_enum_labels
from .model import Model
from .options import SyncOptions

__all__ = ["IGNORED_TABLES", "Plan", "ignored_tables", "plan_tenant", "split_destructive"]

#: Tables in a tenant that are bookkeeping, not model: never compared, never dropped.
IGNORED_TABLES = frozenset({"alembic_version"})


def ignored_tables(options: SyncOptions) -> list[str]:
    """The table names a tenant may hold that are never compared with the model."""
    return sorted(IGNORED_TABLES | {options.version_table})


@dataclass(frozen=True)
class Plan:
    """What one tenant needs: the operations to run, and the destructive ones withheld."""

    schema: str
    context: MigrationContext
    operations: tuple[ops.MigrateOperation, ...]
    withheld: tuple[ops.MigrateOperation, ...]

    @property
    def descriptions(self) -> list[str]:
        """The operations to run, in words."""
        return [describe_operation(op) for op in self.operations]

    @property
    def withheld_descriptions(self) -> list[str]:
        """The withheld operations, in words."""
        return [describe_operation(op) for op in self.withheld]


def plan_tenant(conn: Connection, schema: str, model: Model, options: SyncOptions) -> Plan:
    """Compare the tenant that ``conn``'s search_path points at with the model.

    The connection must already be set up for the tenant (see
    :func:`tenant_sync.locking.set_up_session`); nothing is written.
    """
    ignored = set(ignored_tables(options))

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        return not (type_ == "table" and name in ignored)

    context = MigrationContext.configure(
        connection=conn,
        opts={
            "target_metadata": model.metadata,
            "version_table": options.version_table,
            "version_table_schema": schema,
            "include_name": include_name,
            "include_object": model.include_object,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    script = produce_migrations(context, model.metadata)
    assert script.upgrade_ops is not None
    leaves = correct_plan(list(_leaf_operations(script.upgrade_ops.ops)), model)
    to_run, withheld = split_destructive(leaves, options.allow_destructive)
    # Enum labels, which autogenerate does not compare: added before anything else, so
    # that a type has them before a column of it changes.
    labels_added, labels_differ = compare_enum_labels(conn, schema, model)
    return Plan(schema, context, (*labels_added, *to_run), (*withheld, *labels_differ))


def split_destructive(
    operations: Iterable[ops.MigrateOperation], allow_destructive: bool
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """Split operations into ``(to_run, withheld)``.

    Destructive means it can lose data: drop table, drop column, change a column's
    type, unless the change only widens it (see :func:`is_widening`).  An alter that
    changes the type *and* something else (nullability, default, comment) is split: the
    type change is withheld, the rest still runs.
    """
    to_run: list[ops.MigrateOperation] = []
    withheld: list[ops.MigrateOperation] = []
    for op in operations:
        if allow_destructive:
            to_run.append(op)
        elif isinstance(op, (ops.DropTableOp, ops.DropColumnOp)):
            withheld.append(op)
        elif (
            isinstance(op, ops.AlterColumnOp)
            and op.modify_type is not None
            and not is_widening(op.existing_type, op.modify_type)
        ):
            type_only, rest = _split_type_change(op)
            withheld.append(type_only)
            if rest is not None:
                to_run.append(rest)
        else:
            to_run.append(op)
    return to_run, withheld


def is_widening(existing: Any, new: Any) -> bool:
    """True for a type change that keeps every value and rewrites no row in PostgreSQL.

    ``varchar(n)`` to a longer ``varchar``, to ``varchar`` without a limit or to
    ``text``; ``numeric(p, s)`` to a larger precision at the same scale, or to
    ``numeric`` without a limit.  Both must have the same collation.
    """
    if getattr(existing, "collation", None) != getattr(new, "collation", None):
        return False
    if _plain(existing, sa.String) and _plain(new, sa.String):
        if existing.length is None:
            return new.length is None
        return new.length is None or new.length >= existing.length
    if _plain(existing, sa.Numeric) and _plain(new, sa.Numeric):
        if existing.precision is None:
            return new.precision is None and new.scale is None
        if new.precision is None:
            return new.scale is None
        return bool(new.scale == existing.scale and new.precision >= existing.precision)
    return False


# The types whose widening PostgreSQL does without a rewrite: no CHAR (blank-padded),
# no enum or other String subclass with its own meaning, no float.
# (Reflection gives the upper-case types, the model usually the generic ones.)
_PLAIN_TYPES = (
    *(sa.String, sa.VARCHAR, sa.Unicode, sa.Text, sa.TEXT, sa.UnicodeText),
    *(sa.Numeric, sa.NUMERIC, sa.DECIMAL),
)


def _plain(type_: Any, kind: type) -> bool:
    return isinstance(type_, kind) and type(type_) in _PLAIN_TYPES


def _leaf_operations(operations: Iterable[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from _leaf_operations(op.ops)
        else:
            yield op


def _split_type_change(
    op: ops.AlterColumnOp,
) -> tuple[ops.AlterColumnOp, ops.AlterColumnOp | None]:
    common: dict[str, Any] = {
        "schema": op.schema,
        "existing_type": op.existing_type,
        "existing_server_default": op.existing_server_default,
        "existing_nullable": op.existing_nullable,
        "existing_comment": op.existing_comment,
    }
    type_only = ops.AlterColumnOp(
        op.table_name, op.column_name, modify_type=op.modify_type, **common
    )
    # Alembic's "no change" markers: None for nullable, False for default and comment.
    changes: dict[str, Any] = {}
    if op.modify_nullable is not None:
        changes["modify_nullable"] = op.modify_nullable
    if op.modify_server_default is not False:
        changes["modify_server_default"] = op.modify_server_default
    if op.modify_comment is not False:
        changes["modify_comment"] = op.modify_comment
    if not changes:
        return type_only, None
    return type_only, ops.AlterColumnOp(op.table_name, op.column_name, **common, **changes)
