"""Declared table renames: ``info={"renamed_from": "old_name"}`` on a Table.

A tenant that holds the old table and not the new one has it renamed, rows kept, with
what PostgreSQL named after the old table: its serial and identity sequences
(``old_id_seq``) and the constraints and indexes whose model counterpart carries the
new name (``old_pkey`` to ``new_pkey``, ``ix_old_x`` to ``ix_new_x``), so that the
renamed table equals the one ``create_all`` builds.

The plan is made as if the rename had run: :func:`renamed_for_planning` runs the
renames in a savepoint, the comparison with the model then sees the new table with
its old rows' structure (a column added or changed with the rename is planned like any
other), and the savepoint is rolled back; the rename is the first operation of the plan.

A tenant with both tables keeps both: the old table's drop becomes a conflict (see
:class:`~tenant_sync.renames.RenameConflictOp`), never run.  A tenant with neither (a
signup) gets the new table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic.operations import Operations, ops
from sqlalchemy.engine import Connection

from .renames import not_null_constraints, table_hints
from .sql import MAX_IDENTIFIER_BYTES, quote

__all__ = ["RenameTableOp", "pending_table_renames", "renamed_for_planning"]

State = dict[tuple[str, str | None, str], str]

_OWNED_SEQUENCES = """
SELECT s.relname, a.attname
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
    AND d.refclassid = 'pg_catalog.pg_class'::regclass
    AND d.refobjid = CAST(:table AS regclass) AND d.deptype IN ('a', 'i')
ORDER BY s.relname
"""


class RenameTableOp(ops.MigrateOperation):
    """``ALTER TABLE old RENAME TO new``, and the renames of what was named after it.

    ``follow_ups`` holds ``(kind, old name, new name)``: kind is ``sequence``,
    ``constraint`` or ``index``.
    """

    def __init__(self, old: str, new: str, follow_ups: tuple[tuple[str, str, str], ...] = ()):
        self.old = old
        self.new = new
        self.follow_ups = follow_ups

    @property
    def table_name(self) -> str:
        """The table's name once renamed (what the plan's later operations use)."""
        return self.new

    def statements(self) -> list[str]:
        """The SQL, in the order it runs."""
        statements = [f"ALTER TABLE {quote(self.old)} RENAME TO {quote(self.new)}"]
        for kind, old, new in self.follow_ups:
            if kind == "constraint":
                statements.append(
                    f"ALTER TABLE {quote(self.new)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}"
                )
            else:
                statements.append(f"ALTER {kind.upper()} {quote(old)} RENAME TO {quote(new)}")
        return statements

    def describe(self) -> str:
        """The rename in words, with what is renamed along with the table."""
        also = ", ".join(f"{kind} {old}" for kind, old, _ in self.follow_ups)
        return f"rename table {self.old} to {self.new}" + (f" (and its {also})" if also else "")


@Operations.implementation_for(RenameTableOp)
def _rename_table(operations: Operations, operation: RenameTableOp) -> None:
    for statement in operation.statements():
        operations.execute(statement)


def pending_table_renames(
    conn: Connection, schema: str, metadata: sa.MetaData, have: State, wanted: State
) -> list[RenameTableOp]:
    """The table renames the tenant needs: the old table present, the new one absent."""
    tables = {name for kind, _, name in have if kind == "table"}
    return [
        RenameTableOp(old, new, _follow_ups(conn, schema, old, new, have, wanted))
        for old, new in table_hints(metadata)
        if old in tables and new not in tables
    ]


def _follow_ups(
    conn: Connection, schema: str, old: str, new: str, have: State, wanted: State
) -> tuple[tuple[str, str, str], ...]:
    taken = {name for _, _, name in have}
    renames: list[tuple[str, str, str]] = []
    for sequence, column in conn.execute(
        sa.text(_OWNED_SEQUENCES), {"table": f"{quote(schema)}.{quote(old)}"}
    ):
        if sequence == f"{old}_{column}_seq":
            renamed = f"{new}_{column}_seq"
            if len(renamed.encode()) <= MAX_IDENTIFIER_BYTES:
                renames.append(("sequence", sequence, renamed))
    # PostgreSQL 18 names each NOT NULL constraint after its table and column.
    for column, constraint in sorted(not_null_constraints(conn, schema, old).items()):
        renamed = f"{new}_{column}_not_null"
        if (
            constraint == f"{old}_{column}_not_null"
            and len(renamed.encode()) <= MAX_IDENTIFIER_BYTES
        ):
            renames.append(("constraint", constraint, renamed))
    for kind, table, name in sorted(have, key=lambda key: (key[0], key[2])):
        if table != old or kind not in ("constraint", "index"):
            continue
        derived = _named_after(name, old, new)
        if derived is not None and (kind, new, derived) in wanted and derived not in taken:
            renames.append((kind, name, derived))
            taken.add(derived)
    return tuple(renames)


def _named_after(name: str, old: str, new: str) -> str | None:
    """``name`` with the table's old name replaced by the new, where it was derived from it."""
    for prefix in ("", "ix_", "uq_", "ck_", "fk_", "pk_"):
        if name.startswith(f"{prefix}{old}_"):
            return f"{prefix}{new}{name[len(prefix) + len(old) :]}"
    return None


@contextmanager
def renamed_for_planning(conn: Connection, renames: Sequence[RenameTableOp]) -> Iterator[None]:
    """Run ``renames`` in a savepoint for the block, then roll them back.

    The block compares the tenant with the model as it will be once renamed; the
    locks the renames took go with the savepoint.
    """
    if not renames:
        yield
        return
    savepoint = conn.begin_nested()
    try:
        for rename in renames:
            for statement in rename.statements():
                conn.exec_driver_sql(statement)
        yield
    finally:
        savepoint.rollback()
