"""Diff one tenant against the model with Alembic autogenerate; withhold the classes not allowed.

Each tenant gets its own :class:`~alembic.runtime.migration.MigrationContext` on its own
connection (never Alembic's module-global ``context`` proxy, which is not thread-safe).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from alembic.autogenerate import produce_migrations
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from .changes import Changes
from .check_constraints import compare_checks
from .classes import AllowSpec, classify, is_allowed
from .corrections import correct_plan
from .data_checks import data_checks
from .describe import describe_operation
from .enum_labels import compare_enum_labels, unusable_enum_values
from .indexes import compare_indexes, without_index_ops
from .model import Model
from .not_valid import compare_validation
from .options import HISTORY_TABLE, SyncOptions
from .renames import RenameConflictOp, apply_renames, table_hints, with_not_null_renames
from .renames import count_conflicts as count_conflicts_of
from .table_renames import RenameTableOp, pending_table_renames, renamed_for_planning
from .version_table import read_version
from .yardstick import (
    Difference,
    State,
    compare_states,
    model_state,
    model_state_built,
    read_state,
    tables_of,
    untouched,
)

__all__ = ["IGNORED_TABLES", "Plan", "ignored_tables", "plan_tenant", "split_by_class"]

# SQLAlchemy 2.1 reflects a CHECK added NOT VALID (the online path's helper, see
# tenant_sync.online) as CheckConstraint(**reflected), which passes its dialect_options
# as a keyword and warns about it on every comparison.  tenant_sync reads NOT VALID from
# the catalog itself (see tenant_sync.not_valid); only that message is silenced.
warnings.filterwarnings(
    "ignore", message="Can't validate argument 'dialect_options'", category=sa_exc.SAWarning
)

#: Tables in a tenant that are bookkeeping, not model: never compared, never dropped.
IGNORED_TABLES = frozenset({"alembic_version", HISTORY_TABLE})


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
    accept: tuple[str, ...] = ()
    #: What differs from the model that no operation, run or withheld, is about.
    unplanned: tuple[Difference, ...] = ()

    @property
    def reaches_model(self) -> bool:
        """True when the tenant equals the model once the operations have run."""
        return not self.withheld and not self.unplanned

    @property
    def descriptions(self) -> list[str]:
        """The operations to run, in words."""
        return [describe_operation(op) for op in self.operations]

    @property
    def withheld_descriptions(self) -> list[str]:
        """The withheld operations, in words."""
        return [describe_operation(op) for op in self.withheld]

    def changes(self, sql: Iterable[str]) -> Changes:
        """The plan in words, with each operation's class, and ``sql``, the SQL it runs."""
        return Changes(
            operations=tuple(self.descriptions),
            classes=tuple(classify(op) for op in self.operations),
            sql=tuple(sql),
            withheld=tuple(self.withheld_descriptions),
            withheld_classes=tuple(classify(op) for op in self.withheld),
            accept=self.accept,
            checks=data_checks(self.operations),
            unplanned=tuple(difference.describe() for difference in self.unplanned),
            unplanned_classes=tuple(difference.change_class for difference in self.unplanned),
            conflicts=sum(isinstance(op, RenameConflictOp) for op in self.withheld),
        )


def plan_tenant(
    conn: Connection,
    schema: str,
    model: Model,
    options: SyncOptions,
    count_conflicts: bool = True,
    *,
    overlap: bool = False,
) -> Plan:
    """Compare the tenant that ``conn``'s search_path points at with the model.

    The connection must already be set up for the tenant (see
    :func:`tenant_sync.locking.set_up_session`); nothing is written.  Declared table
    renames are planned first, the rest as if they had run (see
    :mod:`tenant_sync.table_renames`).  With ``count_conflicts``, a rename conflict says
    what each side holds in this tenant (a query per conflict).

    With ``overlap``, while the model's state is still being built (by
    :func:`~tenant_sync.yardstick.build_model_state`, on another connection), a tenant
    that records another model's version is compared by autogenerate first, rather than
    after the build: it most likely differs, and the comparison then costs no wait.
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
    ignored_names = sorted(ignored)
    early = None
    if overlap and _likely_differs_while_built(conn, context, model, ignored_names):
        early = _autogenerated(conn, context, schema, model)
    wanted = model_state(conn, model, ignored_names)
    have = read_state(conn, schema, ignored_names) if wanted is not None else None
    renames: list[RenameTableOp] = []
    if have is not None and wanted is not None:
        renames = pending_table_renames(conn, schema, model.metadata, have, wanted)
    with renamed_for_planning(conn, renames):
        if renames:
            have = read_state(conn, schema, ignored_names)
        plan = _compare(conn, context, schema, model, options, have, wanted, early)
        plan = replace(plan, operations=tuple(with_not_null_renames(conn, schema, plan.operations)))
        if count_conflicts:
            plan = replace(plan, withheld=tuple(count_conflicts_of(conn, plan.withheld)))
    return replace(plan, operations=(*renames, *plan.operations))


def _compare(
    conn: Connection,
    context: MigrationContext,
    schema: str,
    model: Model,
    options: SyncOptions,
    have: State | None,
    wanted: State | None,
    early: _Autogenerated | None = None,
) -> Plan:
    differences = compare_states(have, wanted) if have is not None and wanted is not None else None
    if differences == []:
        # Equal to the model as PostgreSQL shows it: nothing to ask Alembic.
        return Plan(schema, context, (), (), options.accept)
    labels_added, labels_differ, leaves, conflicts = early or _autogenerated(
        conn, context, schema, model
    )
    if have is not None and wanted is not None:
        unusable = unusable_enum_values(labels_added, labels_differ)
        leaves = _with_state_comparisons(leaves, have, wanted, model, unusable)
    to_run, withheld = split_by_class(leaves, options.allow)
    operations = (*labels_added, *to_run)
    withheld_all = (*withheld, *conflicts, *labels_differ)
    unplanned = untouched(differences or (), (*operations, *withheld_all))
    return Plan(schema, context, operations, withheld_all, options.accept, tuple(unplanned))


#: Enum labels to add and those that differ otherwise; autogenerate's operations, and
#: its rename conflicts (see :func:`_compared_by_alembic`).
_Autogenerated = tuple[
    list[ops.MigrateOperation],
    list[ops.MigrateOperation],
    list[ops.MigrateOperation],
    list[ops.MigrateOperation],
]


def _autogenerated(
    conn: Connection, context: MigrationContext, schema: str, model: Model
) -> _Autogenerated:
    # Enum labels, which autogenerate does not compare: added before anything else, so
    # that a type has them before a column of it changes.
    labels_added, labels_differ = compare_enum_labels(conn, schema, model)
    leaves, conflicts = _compared_by_alembic(context, model)
    return labels_added, labels_differ, leaves, conflicts


def _likely_differs_while_built(
    conn: Connection, context: MigrationContext, model: Model, ignored: list[str]
) -> bool:
    """Whether to run autogenerate before the model's state is in: it is not built yet,
    no table rename is declared (which must be planned first), and the tenant records
    another model's version (or none)."""
    if model_state_built(conn.engine, model, ignored) or table_hints(model.metadata):
        return False
    return read_version(context) != model.fingerprint


def _compared_by_alembic(
    context: MigrationContext, model: Model
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """Autogenerate's operations, corrected (see :mod:`tenant_sync.corrections`), with
    declared renames applied; and the renames that conflict (see :mod:`tenant_sync.renames`)."""
    script = produce_migrations(context, model.metadata)
    assert script.upgrade_ops is not None
    leaves = correct_plan(list(_leaf_operations(script.upgrade_ops.ops)), model)
    return apply_renames(leaves, model.metadata)


def _with_state_comparisons(
    leaves: list[ops.MigrateOperation],
    have: State,
    wanted: State,
    model: Model,
    unusable: Collection[str],
) -> list[ops.MigrateOperation]:
    """Autogenerate's operations with what tenant_sync compares itself from the two states.

    CHECKs and indexes of the tables both have (see :mod:`tenant_sync.check_constraints`
    and :mod:`tenant_sync.indexes`): index drops first, then autogenerate's operations,
    then CHECKs and new indexes, which may name the columns the plan adds.  Those whose
    model definition uses an enum value in ``unusable`` are left for a later sync.
    """
    created = {op.table_name for op in leaves if isinstance(op, ops.CreateTableOp)}
    shared = (tables_of(have) & tables_of(wanted)) - created
    made = _indexes_of_added_columns(leaves, model)
    drops, creates = compare_indexes(have, wanted, shared, made, unusable)
    return [
        *drops,
        *without_index_ops(leaves, shared),
        *compare_checks(have, wanted, created, unusable),
        *compare_validation(have, wanted),
        *creates,
    ]


def _indexes_of_added_columns(leaves: Iterable[ops.MigrateOperation], model: Model) -> set[str]:
    """The indexes that ``add_column`` makes with a column declared ``index=True``."""
    names: set[str] = set()
    for op in leaves:
        table = (
            model.metadata.tables.get(op.table_name) if isinstance(op, ops.AddColumnOp) else None
        )
        if table is None or not isinstance(op, ops.AddColumnOp) or not op.column.index:
            continue
        for index in table.indexes:
            if [column.name for column in index.columns] == [op.column.name] and index.name:
                names.add(str(index.name))
    return names


def split_by_class(
    operations: Iterable[ops.MigrateOperation], allow: AllowSpec
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """Split operations into ``(to_run, withheld)`` by their class (see :mod:`tenant_sync.classes`).

    An alter whose type change is withheld but which also changes something else
    (nullability, default, comment) is split: the type change is withheld, the rest
    still runs if its own class is allowed.
    """
    to_run: list[ops.MigrateOperation] = []
    withheld: list[ops.MigrateOperation] = []
    for op in operations:
        if is_allowed(allow, describe_operation(op), classify(op)):
            to_run.append(op)
            continue
        if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None:
            type_only, rest = _split_type_change(op)
            if rest is not None and is_allowed(allow, describe_operation(rest), classify(rest)):
                withheld.append(type_only)
                to_run.append(rest)
                continue
        withheld.append(op)
    return to_run, withheld


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
