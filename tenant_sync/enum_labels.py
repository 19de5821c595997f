"""Enum labels, which Alembic autogenerate does not compare: added in place, or reported.

A tenant's enum type that lacks labels the model has gets them with ``ALTER TYPE ...
ADD VALUE ... BEFORE/AFTER``, so that its labels end in the model's order (no table is
rewritten).  Labels the model no longer has, or labels in another order, would need the
type rebuilt, which could fail on rows that use them: tenant_sync does not do it, and
reports the difference among the withheld changes, with or without
``allow_destructive``.

PostgreSQL does not let a transaction use a label it added (``unsafe use of new
value``): a plan that adds a label and, in the same tenant, a default or CHECK that
names it fails, rolled back whole, and the next run (the label then exists) applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations, ops
from sqlalchemy.engine import Connection

from .model import Model
from .sql import literal, quote

__all__ = [
    "AddEnumValueOp",
    "EnumLabelsDifferOp",
    "RenameEnumValueOp",
    "compare_enum_labels",
    "unusable_enum_values",
]


class AddEnumValueOp(ops.MigrateOperation):
    """``ALTER TYPE name ADD VALUE label BEFORE|AFTER neighbour`` on the tenant's own type."""

    def __init__(self, type_name: str, label: str, *, before: str | None, after: str | None):
        self.type_name = type_name
        self.label = label
        self.before = before
        self.after = after

    def sql(self) -> str:
        """The statement, unqualified: the tenant's search_path finds its type."""
        position = ""
        if self.before is not None:
            position = f" BEFORE {literal(self.before)}"
        elif self.after is not None:
            position = f" AFTER {literal(self.after)}"
        return f"ALTER TYPE {quote(self.type_name)} ADD VALUE {literal(self.label)}{position}"

    def describe(self) -> str:
        """The operation in words."""
        where = (
            f" before {self.before!r}"
            if self.before is not None
            else f" after {self.after!r}"
            if self.after is not None
            else ""
        )
        return f"add value {self.label!r} to enum {self.type_name}{where}"


class RenameEnumValueOp(ops.MigrateOperation):
    """``ALTER TYPE name RENAME VALUE old TO new``: a label renamed in the model, declared."""

    def __init__(self, type_name: str, old: str, new: str):
        self.type_name = type_name
        self.old = old
        self.new = new

    def sql(self) -> str:
        """The statement, unqualified: the tenant's search_path finds its type."""
        return f"ALTER TYPE {quote(self.type_name)} RENAME VALUE {literal(self.old)} TO {literal(self.new)}"

    def describe(self) -> str:
        """The operation in words."""
        return f"rename value {self.old!r} of enum {self.type_name} to {self.new!r}"


class EnumLabelsDifferOp(ops.MigrateOperation):
    """A tenant's enum type whose labels differ in a way tenant_sync does not change.

    Never applied: it only reports, among the withheld changes, what differs.
    """

    def __init__(self, type_name: str, tenant_labels: list[str], model_labels: list[str]):
        self.type_name = type_name
        self.tenant_labels = tenant_labels
        self.model_labels = model_labels

    def describe(self) -> str:
        """The difference in words."""
        extra = [label for label in self.tenant_labels if label not in self.model_labels]
        if extra:
            what = f"has labels the model lacks ({', '.join(map(repr, extra))})"
        else:
            what = "has its labels in another order"
        return (
            f"enum {self.type_name} {what}: tenant {self.tenant_labels}, model "
            f"{self.model_labels}; tenant_sync does not remove or reorder enum labels"
        )


def unusable_enum_values(
    added: Iterable[ops.MigrateOperation], differ: Iterable[ops.MigrateOperation]
) -> list[str]:
    """How the enum values a plan cannot use appear in a definition: ``'paid'::status``.

    A value added in a transaction cannot be used in it (PostgreSQL: "unsafe use of new
    value"), and a type whose labels differ may lack the value altogether; an index
    or CHECK that names one waits for a later sync.  A type with differing labels
    blocks every value of it (``::status``).
    """
    found: list[str] = []
    for op in added:
        if isinstance(op, AddEnumValueOp):
            for name in {op.type_name, quote(op.type_name)}:
                found.append(f"{_deparsed_literal(op.label)}::{name}")
    for op in differ:
        if isinstance(op, EnumLabelsDifferOp):
            found.extend({f"::{op.type_name}", f"::{quote(op.type_name)}"})
    return found


def _deparsed_literal(value: str) -> str:
    """``value`` as PostgreSQL's deparser writes a string constant: ``'it''s'``."""
    return "'" + value.replace("'", "''") + "'"


@Operations.implementation_for(AddEnumValueOp)
def _add_enum_value(operations: Operations, operation: AddEnumValueOp) -> None:
    operations.execute(operation.sql())


@Operations.implementation_for(RenameEnumValueOp)
def _rename_enum_value(operations: Operations, operation: RenameEnumValueOp) -> None:
    operations.execute(operation.sql())


def compare_enum_labels(
    conn: Connection, schema: str, model: Model
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """``(to_run, withheld)``: the label changes of the enum types ``schema`` shares with the model.

    A type the tenant lacks altogether is left to Alembic (created with its table).  A
    label renamed in the model and declared on a column of its type,
    ``info={"renamed_labels": {"old": "new"}}``, is renamed where the tenant has the old
    label and not the new one (the rows keep their value, now under the new name).
    """
    wanted = dict(_model_enums(model))
    if not wanted:
        return [], []
    existing = _tenant_enums(conn, schema, sorted(wanted))
    renamed = _declared_label_renames(model)
    to_run: list[ops.MigrateOperation] = []
    withheld: list[ops.MigrateOperation] = []
    for name, have in sorted(existing.items()):
        want = wanted[name]
        for old, new in renamed.get(name, {}).items():
            if old in have and new not in have and new in want:
                to_run.append(RenameEnumValueOp(name, old, new))
                have = [new if label == old else label for label in have]
        if have == want:
            continue
        if [label for label in want if label in have] != have:
            withheld.append(EnumLabelsDifferOp(name, have, want))
        else:
            to_run.extend(_additions(name, have, want))
    return to_run, withheld


def _additions(name: str, have: list[str], want: list[str]) -> Iterator[AddEnumValueOp]:
    """Each missing label, placed before the next label the tenant has (else after the last)."""
    present = set(have)
    for index, label in enumerate(want):
        if label in present:
            continue
        following = next((later for later in want[index + 1 :] if later in present), None)
        previous = next((earlier for earlier in reversed(want[:index]) if earlier in present), None)
        yield AddEnumValueOp(name, label, before=following, after=None if following else previous)
        present.add(label)


def _model_enums(model: Model) -> Iterator[tuple[str, list[str]]]:
    for table in model.tenant_tables:
        for column in table.columns:
            type_: Any = column.type
            if (
                isinstance(type_, sa.Enum)
                and type_.native_enum
                and type_.name
                and type_.schema is None
            ):
                yield type_.name, list(type_.enums)


def _declared_label_renames(model: Model) -> dict[str, dict[str, str]]:
    """Type name -> {old label: new label}, from ``info["renamed_labels"]`` on its columns."""
    found: dict[str, dict[str, str]] = {}
    for table in model.tenant_tables:
        for column in table.columns:
            declared = column.info.get("renamed_labels")
            type_: Any = column.type
            if isinstance(declared, dict) and isinstance(type_, sa.Enum) and type_.name:
                found.setdefault(type_.name, {}).update(
                    (str(old), str(new)) for old, new in declared.items()
                )
    return found


def _tenant_enums(conn: Connection, schema: str, names: list[str]) -> dict[str, list[str]]:
    rows = conn.execute(
        sa.text(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)"
            " FROM pg_catalog.pg_type t"
            " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
            " JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid"
            " WHERE n.nspname = :schema AND t.typname = ANY(CAST(:names AS text[]))"
            " GROUP BY t.typname"
        ),
        {"schema": schema, "names": names},
    )
    return {name: list(labels) for name, labels in rows}
