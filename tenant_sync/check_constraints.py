"""CHECK constraints, which Alembic autogenerate does not compare: by name and definition.

The model's CHECKs are read from PostgreSQL itself: its tenant tables are built with
``metadata.create_all`` in a scratch schema, inside a savepoint of the tenant's own
transaction that is rolled back at once (nothing persists, no other connection, no
privilege beyond CREATE on the database), and ``pg_get_constraintdef()`` gives each
CHECK's definition as PostgreSQL normalises it.  A tenant's CHECKs are read the same
way, so the two compare as text.  The model's are read once per model and process.

For each table the tenant and the model share: a CHECK the tenant lacks is added, one
whose definition differs is dropped and added again, and a CHECK the model no longer
has is dropped.  Tables the plan creates get theirs from ``CREATE TABLE``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Collection

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import Connection

from .model import Model
from .sql import quote

__all__ = ["compare_checks"]

# (table, constraint name) -> definition, e.g. CHECK ((amount > 0))
Checks = dict[tuple[str, str], str]

_CHECKS_SQL = (
    "SELECT c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid)"
    " FROM pg_catalog.pg_constraint k"
    " JOIN pg_catalog.pg_class c ON c.oid = k.conrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND k.contype = 'c' AND c.relname = ANY(CAST(:tables AS text[]))"
)
_TABLES_SQL = (
    "SELECT c.relname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
    " AND c.relname = ANY(CAST(:tables AS text[]))"
)

log = logging.getLogger(__name__)

# None: the model's CHECKs could not be built (no CREATE privilege, say): not compared.
_model_checks: dict[str, Checks | None] = {}
_model_checks_lock = threading.Lock()


def compare_checks(
    conn: Connection, schema: str, model: Model, skip_tables: Collection[str]
) -> list[ops.MigrateOperation]:
    """The operations that make the tenant's CHECKs equal to the model's.

    ``conn`` is the tenant's, in its transaction, with its search_path set;
    ``skip_tables`` are the tables the plan creates.
    """
    names = sorted(table.name for table in model.tenant_tables)
    if not names:
        return []
    wanted = model_checks(conn, model)
    if wanted is None:
        return []
    present = set(conn.execute(sa.text(_TABLES_SQL), {"schema": schema, "tables": names}).scalars())
    shared = present - set(skip_tables)
    have = _read_checks(conn, schema, sorted(shared))
    operations: list[ops.MigrateOperation] = []
    for (table, name), definition in sorted(have.items()):
        if wanted.get((table, name)) != definition:
            operations.append(ops.DropConstraintOp(name, table, type_="check"))
    for (table, name), definition in sorted(wanted.items()):
        if table in shared and have.get((table, name)) != definition:
            operations.append(ops.CreateCheckConstraintOp(name, table, sa.text(_body(definition))))
    return operations


def model_checks(conn: Connection, model: Model) -> Checks | None:
    """The model's CHECKs as PostgreSQL defines them, built once per model (see above).

    None, with a warning, when they cannot be built: CHECKs are then not compared.
    """
    # Built under the lock, once: other threads wait for it rather than build it again.
    with _model_checks_lock:
        if model.fingerprint not in _model_checks:
            _model_checks[model.fingerprint] = _build_model_checks(conn, model)
        return _model_checks[model.fingerprint]


def _build_model_checks(conn: Connection, model: Model) -> Checks | None:
    copy = _tables_with_checks(model)
    if not copy.tables:
        return {}
    scratch = f"tenant_sync_scratch_{uuid.uuid4().hex[:12]}"
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(f"CREATE SCHEMA {quote(scratch)}"))
        conn.execute(sa.text("SELECT set_config('search_path', :path, true)"), {"path": scratch})
        copy.create_all(conn)
        return _read_checks(conn, scratch, sorted(copy.tables))
    except sa.exc.DBAPIError as exc:
        log.warning(
            "CHECK constraints are not compared: building the model in a scratch schema failed: %s",
            " ".join(str(exc.orig).split()),
        )
        return None
    finally:
        savepoint.rollback()  # the schema, its tables and the search_path all go


def _tables_with_checks(model: Model) -> sa.MetaData:
    """The model's tenant tables that have CHECKs, reduced to their columns and CHECKs.

    A new MetaData (with the model's naming convention, which names constraints), new
    columns and copied types: the shared model is never touched, and the scratch build
    makes no key, index or default, only what a CHECK needs to be parsed.
    """
    copy = sa.MetaData(naming_convention=model.metadata.naming_convention)
    for table in model.tenant_tables:
        checks = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
        inline = [c for column in table.columns for c in column.constraints]
        has_typed = any(
            getattr(column.type, "create_constraint", False) for column in table.columns
        )
        if not checks and not inline and not has_typed:
            continue
        columns = [
            sa.Column(
                column.name,
                column.type.copy(),
                *[_copied(c) for c in column.constraints if isinstance(c, sa.CheckConstraint)],
                nullable=column.nullable,
            )
            for column in table.columns
        ]
        # Checks a type makes (Boolean, non-native Enum) come again with the copied type.
        own = [_copied(c) for c in checks if not getattr(c, "_type_bound", False)]
        sa.Table(table.name, copy, *columns, *own)
    return copy


def _copied(check: sa.CheckConstraint) -> sa.CheckConstraint:
    return sa.CheckConstraint(check.sqltext, name=check.name)


def _read_checks(conn: Connection, schema: str, tables: list[str]) -> Checks:
    if not tables:
        return {}
    rows = conn.execute(sa.text(_CHECKS_SQL), {"schema": schema, "tables": tables})
    return {(table, name): definition for table, name, definition in rows}


def _body(definition: str) -> str:
    """``CHECK ((amount > 0))`` -> ``(amount > 0)``: the condition Alembic's op takes.

    The outer parentheses are the CHECK's own syntax, always written by PostgreSQL.
    """
    body = definition.removesuffix(" NOT VALID").removeprefix("CHECK ")
    return body[1:-1] if body.startswith("(") and body.endswith(")") else body
