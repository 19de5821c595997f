"""Alembic operations in words, for reports and logs: ``add column projects.description TEXT``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from .enum_labels import AddEnumValueOp, EnumLabelsDifferOp, RenameEnumValueOp
from .indexes import CreateIndexFromDefinitionOp
from .not_valid import ValidateConstraintOp
from .renames import RenameConflictOp
from .table_renames import RenameTableOp

__all__ = ["describe_operation", "table_of"]

# A private dialect instance, only for rendering type names; the engine's is never touched.
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def describe_operation(op: ops.MigrateOperation) -> str:
    """Describe one leaf operation in a short line."""
    if isinstance(
        op,
        AddEnumValueOp
        | EnumLabelsDifferOp
        | RenameEnumValueOp
        | CreateIndexFromDefinitionOp
        | RenameConflictOp
        | RenameTableOp
        | ValidateConstraintOp,
    ):
        return op.describe()
    if isinstance(op, ops.CreateTableOp):
        return f"create table {op.table_name}"
    if isinstance(op, ops.DropTableOp):
        return f"drop table {op.table_name}"
    if isinstance(op, ops.AddColumnOp):
        return f"add column {op.table_name}.{op.column.name} {_column(op.column)}"
    if isinstance(op, ops.DropColumnOp):
        return f"drop column {op.table_name}.{op.column_name}"
    if isinstance(op, ops.AlterColumnOp):
        return _describe_alter(op)
    if isinstance(op, ops.CreateIndexOp):
        unique = "unique " if op.unique else ""
        return f"create {unique}index {op.index_name} on {op.table_name} ({_names(op.columns)})"
    if isinstance(op, ops.DropIndexOp):
        return f"drop index {op.index_name} on {op.table_name}"
    if isinstance(op, ops.CreateForeignKeyOp):
        return (
            f"add foreign key {_name(op.constraint_name)}on {op.source_table} "
            f"({', '.join(op.local_cols)}) -> {_qualified(getattr(op, 'referent_schema', None), op.referent_table)} "
            f"({', '.join(op.remote_cols)})"
        )
    if isinstance(op, ops.CreateUniqueConstraintOp):
        return (
            f"add unique constraint {_name(op.constraint_name)}on {op.table_name} "
            f"({', '.join(op.columns)})"
        )
    if isinstance(op, ops.CreateCheckConstraintOp):
        return f"add check constraint {_name(op.constraint_name)}on {op.table_name}: {op.condition}"
    if isinstance(op, ops.DropConstraintOp):
        kind = f"{op.constraint_type} " if op.constraint_type else ""
        return f"drop {kind}constraint {op.constraint_name} on {op.table_name}"
    if isinstance(op, ops.AddConstraintOp):
        return f"add constraint on {getattr(op, 'table_name', '?')}"
    if isinstance(op, ops.CreateTableCommentOp):
        return f"set comment on table {op.table_name}"
    if isinstance(op, ops.DropTableCommentOp):
        return f"drop comment on table {op.table_name}"
    return type(op).__name__


def _name(name: object) -> str:
    """A constraint's name and a space, or nothing for one PostgreSQL will name."""
    return f"{name} " if name else ""


def _describe_alter(op: ops.AlterColumnOp) -> str:
    column = f"{op.table_name}.{op.column_name}"
    parts: list[str] = []
    new_name = op.modify_name
    if new_name:
        parts.append(f"rename column {column} to {new_name}")
    if op.modify_type is not None:
        parts.append(
            f"change type of {column} from {_type(op.existing_type)} to {_type(op.modify_type)}"
        )
    if op.modify_nullable is not None:
        parts.append(f"{'drop' if op.modify_nullable else 'set'} NOT NULL on {column}")
    if op.modify_server_default is not False:
        if op.modify_server_default is None:
            parts.append(f"drop default of {column}")
        else:
            parts.append(f"set default of {column} to {_default(op.modify_server_default)}")
    if op.modify_comment is not False:
        parts.append(f"{'drop' if op.modify_comment is None else 'set'} comment on {column}")
    return "; ".join(parts) or f"alter column {column}"


def _type(type_: Any) -> str:
    if type_ is None:
        return "?"
    try:
        return str(type_.compile(dialect=_DIALECT))
    except Exception:  # an exotic type without a PostgreSQL rendering: its repr still helps
        return repr(type_)


def _column(column: sa.Column[Any]) -> str:
    """A new column's type and what it sets: ``VARCHAR(3) NOT NULL DEFAULT 'EUR'``."""
    words = [_type(column.type)]
    if not column.nullable:
        words.append("NOT NULL")
    if isinstance(column.server_default, sa.Computed):
        words.append(f"GENERATED ALWAYS AS ({_default(column.server_default.sqltext)}) STORED")
    elif isinstance(column.server_default, sa.Identity):
        always = "ALWAYS" if column.server_default.always else "BY DEFAULT"
        words.append(f"GENERATED {always} AS IDENTITY")
    elif column.server_default is not None:
        words.append(f"DEFAULT {_default(column.server_default)}")
    return " ".join(words)


def _default(server_default: Any) -> str:
    arg = getattr(server_default, "arg", server_default)
    if isinstance(arg, str):
        return "'" + arg.replace("'", "''") + "'"  # as SQLAlchemy renders a string default
    text = getattr(arg, "text", None)
    if text is not None:
        return str(text)
    try:
        return str(arg.compile(dialect=_DIALECT))
    except AttributeError:
        return repr(arg)


def _names(columns: Any) -> str:
    return ", ".join(getattr(column, "name", None) or str(column) for column in columns)


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def table_of(op: ops.MigrateOperation) -> str | None:
    """The table an operation is about, or None (an enum type's, say)."""
    for attribute in ("table_name", "source_table"):
        name = getattr(op, attribute, None)
        if isinstance(name, str):
            return name
    return None
