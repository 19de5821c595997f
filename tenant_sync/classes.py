"""Change classes: what each operation risks, and which a run applies.

Every operation of a plan gets one class:

* ``safe``: no data at risk and no table rewrite: a new table, index or nullable
  column (or one with a default), a widening type change, DROP NOT NULL, a new enum
  label, a comment, a dropped index or constraint, a declared rename;
* ``data_dependent``: may fail on the rows a tenant holds, but loses nothing: SET NOT
  NULL, a new UNIQUE, CHECK or FOREIGN KEY, a NOT NULL column without a default;
* ``rewrite``: rewrites the table but keeps every value (``integer`` to ``bigint``);
* ``destructive``: may lose data: a dropped table or column, a narrowing or lossy type
  change, an enum label removed.

By default ``safe`` and ``data_dependent`` changes apply and the others are withheld,
with their class named.  An operation tenant_sync does not know is ``destructive``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, Literal, get_args

import sqlalchemy as sa
from alembic.operations import ops

from .enum_labels import AddEnumValueOp, RenameEnumValueOp
from .errors import ConfigurationError
from .indexes import CreateIndexFromDefinitionOp
from .not_valid import ValidateConstraintOp
from .table_renames import RenameTableOp

__all__ = [
    "CHANGE_CLASSES",
    "DEFAULT_ALLOWED",
    "AllowSpec",
    "ChangeClass",
    "classify",
    "is_allowed",
    "is_widening",
    "parse_allow",
]

ChangeClass = Literal["safe", "data_dependent", "rewrite", "destructive"]

#: Every class, from least to most risky.
CHANGE_CLASSES: tuple[ChangeClass, ...] = get_args(ChangeClass)

#: What a run applies unless told otherwise.
DEFAULT_ALLOWED: frozenset[ChangeClass] = frozenset({"safe", "data_dependent"})

#: ``allow=``: classes, or a callable that gets an operation's words and class.
AllowSpec = Collection[str] | Callable[[str, ChangeClass], bool]

_SAFE_OPERATIONS = (
    ops.CreateTableOp,
    ops.DropIndexOp,
    ops.DropConstraintOp,
    ops.CreateTableCommentOp,
    ops.DropTableCommentOp,
    AddEnumValueOp,
    RenameEnumValueOp,
    RenameTableOp,
)
_DATA_DEPENDENT_OPERATIONS = (
    ops.CreateUniqueConstraintOp,
    ops.CreateForeignKeyOp,
    ops.CreateCheckConstraintOp,
    ValidateConstraintOp,
)


def parse_allow(allow: AllowSpec | None, allow_destructive: bool) -> AllowSpec:
    """Validate ``allow=``; ``allow_destructive=True`` allows every class."""
    if allow_destructive:
        return frozenset(CHANGE_CLASSES)
    if allow is None:
        return DEFAULT_ALLOWED
    if callable(allow):
        return allow
    if isinstance(allow, str):
        allow = [part.strip() for part in allow.split(",") if part.strip()]
    unknown = sorted(set(allow) - set(CHANGE_CLASSES))
    if unknown:
        raise ConfigurationError(
            f"unknown change class {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(CHANGE_CLASSES)}",
            option="allow",
        )
    return frozenset(allow)


def is_allowed(allow: AllowSpec, description: str, change_class: ChangeClass) -> bool:
    """True when ``allow`` lets an operation of that class, so described, run."""
    if callable(allow):
        return bool(allow(description, change_class))
    return change_class in allow


def classify(op: ops.MigrateOperation) -> ChangeClass:
    """The class of one leaf operation."""
    if isinstance(op, _SAFE_OPERATIONS):
        return "safe"
    if isinstance(op, _DATA_DEPENDENT_OPERATIONS):
        return "data_dependent"
    if isinstance(op, ops.CreateIndexOp | CreateIndexFromDefinitionOp):
        return "data_dependent" if op.unique else "safe"
    if isinstance(op, ops.AddColumnOp):
        return _added_column(op.column)
    if isinstance(op, ops.AlterColumnOp):
        return _most_risky(_alter_parts(op))
    return "destructive"  # drops, EnumLabelsDifferOp, and whatever tenant_sync does not know


def _added_column(column: sa.Column[Any]) -> ChangeClass:
    if column.nullable or column.server_default is not None:
        # A constant default is stored in the catalog: no rewrite (PostgreSQL 11+).
        unique_default = column.unique and column.server_default is not None
        return "data_dependent" if unique_default else "safe"
    return "data_dependent"  # fails on a table with rows


def _alter_parts(op: ops.AlterColumnOp) -> Iterable[ChangeClass]:
    if op.modify_type is not None:
        yield _type_change(op.existing_type, op.modify_type)
    if op.modify_nullable is False:
        yield "data_dependent"
    yield "safe"  # defaults, comments, DROP NOT NULL


def _most_risky(classes: Iterable[ChangeClass]) -> ChangeClass:
    return max(classes, key=CHANGE_CLASSES.index)


def _type_change(existing: Any, new: Any) -> ChangeClass:
    if is_widening(existing, new):
        return "safe"
    if 0 < _integer_rank(existing) < _integer_rank(new) or (
        isinstance(existing, sa.REAL) and isinstance(new, sa.DOUBLE_PRECISION)
    ):
        return "rewrite"
    return "destructive"


def _integer_rank(type_: Any) -> int:
    """smallint 1, integer 2, bigint 3; 0 for any other type."""
    if isinstance(type_, sa.BigInteger):
        return 3
    if isinstance(type_, sa.SmallInteger):
        return 1
    return 2 if isinstance(type_, sa.Integer) else 0


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
