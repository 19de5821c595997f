"""A big table's changes split in two: what runs in the tenant's transaction, what runs after.

Phase 1 is the tenant's usual transaction, with, on the big tables: no new index; a
FOREIGN KEY or CHECK added ``NOT VALID`` (enforced for new rows at once, no scan);
SET NOT NULL replaced by a helper ``CHECK (col IS NOT NULL) NOT VALID``.  Phase 2 is a
list of :class:`OnlineStep`, each run alone once phase 1 has committed (see
:mod:`tenant_sync.online.phase2`): indexes dropped and built ``CONCURRENTLY``,
constraints validated (a scan under a lock that lets writes go on), SET NOT NULL once
the helper CHECK is validated (PostgreSQL then skips its own scan) and the helper
dropped, a UNIQUE constraint added ``USING INDEX`` an index built concurrently.

Every phase-2 statement names the tenant's objects with its schema, so it needs no
session state (a transaction-mode pooler may run it on any server session).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from ..describe import table_of
from ..indexes import CreateIndexFromDefinitionOp
from ..not_valid import ValidateConstraintOp
from ..sql import MAX_IDENTIFIER_BYTES, quote

__all__ = ["HELPER_PREFIX", "OnlineStep", "StepKind", "not_null_helper", "split_online"]

#: How the name of every helper CHECK (see :func:`not_null_helper`) begins.
HELPER_PREFIX = "tenant_sync_not_null_"

#: What a phase-2 step does; ``create_index`` and ``drop_index`` run outside a transaction.
StepKind = Literal[
    "create_index", "drop_index", "validate", "set_not_null", "drop_helper", "unique"
]

# A private dialect, only to render CREATE INDEX; the engine's is never touched.
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class OnlineStep:
    """One statement of phase 2, in words and SQL, and what it is about."""

    words: str
    sql: str
    kind: StepKind
    table: str
    #: The index a ``create_index`` or ``drop_index`` step builds or drops.
    index: str | None = None
    #: The constraint a ``validate`` or ``unique`` step validates or adds.
    constraint: str | None = None

    @property
    def concurrently(self) -> bool:
        """True when the statement cannot run in a transaction (``CONCURRENTLY``)."""
        return self.kind in ("create_index", "drop_index")


@dataclass
class _Phases:
    first: list[ops.MigrateOperation] = field(default_factory=list)
    drops: list[OnlineStep] = field(default_factory=list)
    builds: list[OnlineStep] = field(default_factory=list)
    after_builds: list[OnlineStep] = field(default_factory=list)
    validations: list[OnlineStep] = field(default_factory=list)
    not_nulls: list[OnlineStep] = field(default_factory=list)
    #: Operations the online steps do themselves (a helper CHECK planned to be dropped).
    absorbed: list[ops.MigrateOperation] = field(default_factory=list)

    @property
    def second(self) -> tuple[OnlineStep, ...]:
        return (*self.drops, *self.builds, *self.after_builds, *self.validations, *self.not_nulls)


def not_null_helper(table: str, column: str) -> str:
    """The name of the helper CHECK that stands in for ``column``'s NOT NULL meanwhile."""
    name = f"{HELPER_PREFIX}{column}"
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1(f"{table}.{column}".encode()).hexdigest()[:10]
    return f"{HELPER_PREFIX}{digest}"


def split_online(
    operations: Iterable[ops.MigrateOperation],
    schema: str,
    big_tables: Collection[str],
    tenant_types: Collection[str] = (),
) -> tuple[
    tuple[ops.MigrateOperation, ...], tuple[OnlineStep, ...], tuple[ops.MigrateOperation, ...]
]:
    """``(phase 1, phase 2, absorbed)`` of a plan whose ``big_tables`` take the online
    path; ``absorbed`` are the operations that phase 2 does itself, among its steps.

    ``tenant_types`` are the names of the types each tenant has of its own (the model's
    enums): an index expression that names one is qualified with ``schema``.
    """
    operations = list(operations)
    not_null = {
        (op.table_name, op.column_name)
        for op in operations
        if isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False
    }
    helpers_present = {
        (op.table_name, str(op.constraint_name))
        for op in operations
        if isinstance(op, ops.DropConstraintOp)
        and str(op.constraint_name).startswith(HELPER_PREFIX)
    }
    phases = _Phases()
    for op in operations:
        table = table_of(op)
        if table is None or table not in big_tables:
            phases.first.append(op)
            continue
        _split_one(op, schema, table, phases, not_null, helpers_present, tenant_types)
    return tuple(phases.first), phases.second, tuple(phases.absorbed)


def _split_one(
    op: ops.MigrateOperation,
    schema: str,
    table: str,
    phases: _Phases,
    not_null: set[tuple[str, str]],
    helpers_present: set[tuple[str, str]],
    tenant_types: Collection[str],
) -> None:
    qualified = f"{quote(schema)}.{quote(table)}"
    if isinstance(op, ops.DropIndexOp):
        sql = f"DROP INDEX CONCURRENTLY IF EXISTS {quote(schema)}.{quote(op.index_name)}"
        words = f"drop index {op.index_name} on {table} concurrently"
        phases.drops.append(OnlineStep(words, sql, "drop_index", table, op.index_name))
    elif isinstance(op, CreateIndexFromDefinitionOp):
        sql = _concurrent_definition(op.definition, schema, tenant_types)
        phases.builds.append(
            OnlineStep(_built(op.describe()), sql, "create_index", table, op.index_name)
        )
    elif isinstance(op, ops.CreateIndexOp) and op.index_name:
        phases.builds.append(_index_build(op, schema, table))
    elif isinstance(op, ops.CreateUniqueConstraintOp) and op.constraint_name:
        name = str(op.constraint_name)
        columns = ", ".join(quote(column) for column in op.columns)
        build = f"CREATE UNIQUE INDEX CONCURRENTLY {quote(name)} ON {qualified} ({columns})"
        words = f"create unique index {name} on {table} ({', '.join(op.columns)}) concurrently"
        phases.builds.append(OnlineStep(words, build, "create_index", table, name))
        phases.after_builds.append(
            OnlineStep(
                f"add unique constraint {name} on {table} using index {name}",
                f"ALTER TABLE {qualified} ADD CONSTRAINT {quote(name)} UNIQUE USING INDEX {quote(name)}",
                "unique",
                table,
                constraint=name,
            )
        )
    elif (
        isinstance(op, ops.CreateForeignKeyOp | ops.CreateCheckConstraintOp) and op.constraint_name
    ):
        not_valid = copy.copy(op)  # the plan's own op stays as autogenerate made it
        not_valid.kw = {**op.kw, "postgresql_not_valid": True}
        phases.first.append(not_valid)
        phases.validations.append(_validation(str(op.constraint_name), schema, table))
    elif isinstance(op, ValidateConstraintOp):
        phases.validations.append(_validation(op.constraint_name, schema, table))
    elif isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False:
        _split_set_not_null(op, schema, table, phases, helpers_present)
    elif isinstance(op, ops.AddColumnOp) and (_own_indexes(op.column) or _own_unique(op.column)):
        # add_column builds the index of a column declared index=True or unique=True
        # itself, in the transaction: the column is added bare, its index built after.
        bare = op.column._copy()
        bare.index, bare.unique = False, False
        phases.first.append(ops.AddColumnOp(op.table_name, bare, schema=op.schema))
        for index in _own_indexes(op.column):
            phases.builds.append(_index_build(ops.CreateIndexOp.from_index(index), schema, table))
        unique = _own_unique(op.column)
        if unique is not None:
            constraint = ops.CreateUniqueConstraintOp(unique, table, [op.column.name])
            _split_one(constraint, schema, table, phases, not_null, helpers_present, tenant_types)
    elif (
        isinstance(op, ops.DropConstraintOp)
        and (table, str(op.constraint_name)) in helpers_present
        and (table, _helper_column(op, not_null)) in not_null
    ):
        phases.absorbed.append(op)  # the helper of a SET NOT NULL again: used, then dropped
    else:
        phases.first.append(op)


def _split_set_not_null(
    op: ops.AlterColumnOp,
    schema: str,
    table: str,
    phases: _Phases,
    helpers_present: set[tuple[str, str]],
) -> None:
    column = op.column_name
    helper = not_null_helper(table, column)
    rest = _without_set_not_null(op)
    if rest is not None:
        phases.first.append(rest)
    if (table, helper) not in helpers_present:
        condition = sa.text(f"{quote(column)} IS NOT NULL")
        phases.first.append(
            ops.CreateCheckConstraintOp(helper, table, condition, postgresql_not_valid=True)
        )
    qualified = f"{quote(schema)}.{quote(table)}"
    phases.not_nulls += [
        _validation(helper, schema, table),
        OnlineStep(
            f"set not null on {table}.{column}, checked by {helper}",
            f"ALTER TABLE {qualified} ALTER COLUMN {quote(column)} SET NOT NULL",
            "set_not_null",
            table,
        ),
        OnlineStep(
            f"drop constraint {helper} on {table}",
            f"ALTER TABLE {qualified} DROP CONSTRAINT IF EXISTS {quote(helper)}",
            "drop_helper",
            table,
        ),
    ]


def _own_indexes(column: sa.Column[Any]) -> list[sa.Index]:
    """The named indexes that ``index=True`` gives ``column`` in the model."""
    table = getattr(column, "table", None) if column.index else None
    if table is None:
        return []
    return [
        index
        for index in table.indexes
        if index.name and [c.name for c in index.columns] == [column.name]
    ]


def _own_unique(column: sa.Column[Any]) -> str | None:
    """The name of the UNIQUE constraint that ``unique=True`` gives ``column``: the model's
    name, else the one PostgreSQL derives (None when it would be truncated)."""
    table = getattr(column, "table", None) if column.unique else None
    if table is None:
        return None
    for constraint in table.constraints:
        columns = [c.name for c in getattr(constraint, "columns", ())]
        named = isinstance(constraint.name, str)
        if isinstance(constraint, sa.UniqueConstraint) and columns == [column.name] and named:
            return str(constraint.name)
    derived = f"{table.name}_{column.name}_key"
    return derived if len(derived.encode()) <= MAX_IDENTIFIER_BYTES else None


def _helper_column(op: ops.DropConstraintOp, not_null: set[tuple[str, str]]) -> str:
    """The column whose helper ``op`` drops, among the columns set NOT NULL."""
    for table, column in not_null:
        if table == op.table_name and not_null_helper(table, column) == op.constraint_name:
            return column
    return ""


def _without_set_not_null(op: ops.AlterColumnOp) -> ops.AlterColumnOp | None:
    """The alter less its SET NOT NULL, or None when that was all it did."""
    unchanged = op.modify_server_default is False and op.modify_comment is False
    if unchanged and op.modify_type is None and op.modify_name is None:
        return None
    return ops.AlterColumnOp(
        op.table_name,
        op.column_name,
        schema=op.schema,
        existing_type=op.existing_type,
        existing_server_default=op.existing_server_default,
        existing_nullable=op.existing_nullable,
        existing_comment=op.existing_comment,
        modify_name=op.modify_name,
        modify_type=op.modify_type,
        modify_server_default=op.modify_server_default,
        modify_comment=op.modify_comment,
    )


def _validation(name: str, schema: str, table: str) -> OnlineStep:
    validate = ValidateConstraintOp(name, table)
    return OnlineStep(
        validate.describe(), validate.statement(schema), "validate", table, constraint=name
    )


def _index_build(op: ops.CreateIndexOp, schema: str, table: str) -> OnlineStep:
    """Alembic's index, rendered ``CONCURRENTLY`` on the schema-qualified table."""
    concurrent = ops.CreateIndexOp(
        op.index_name,
        op.table_name,
        op.columns,
        schema=schema,
        unique=op.unique,
        **{**op.kw, "postgresql_concurrently": True},
    )
    sql = str(CreateIndex(concurrent.to_index()).compile(dialect=_DIALECT))
    unique = "unique " if op.unique else ""
    names = ", ".join(str(getattr(column, "name", column)) for column in op.columns)
    words = f"create {unique}index {op.index_name} on {table} ({names}) concurrently"
    return OnlineStep(words, sql, "create_index", table, str(op.index_name))


def _built(words: str) -> str:
    return f"{words} concurrently"


_INDEX_HEAD = re.compile(r'(CREATE (?:UNIQUE )?INDEX )((?:"(?:[^"]|"")*"|\S+) ON (?:ONLY )?)')


def _concurrent_definition(definition: str, schema: str, tenant_types: Collection[str]) -> str:
    """The model's ``CREATE INDEX`` text, ``CONCURRENTLY``, its table and the tenant's own
    types qualified with ``schema``."""
    match = _INDEX_HEAD.match(definition)
    if match is None:
        raise ValueError(f"not an index definition: {definition!r}")
    rest = definition[match.end() :]
    for name in tenant_types:
        for written in {name, quote(name)}:
            rest = re.sub(
                rf"::{re.escape(written)}(?![\w$\"])", f"::{quote(schema)}.{quote(name)}", rest
            )
    return f"{match[1]}CONCURRENTLY {match[2]}{quote(schema)}.{rest}"
