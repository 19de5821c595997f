"""Helpers the tests share: make tenants, read the catalog, count rows."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tenant_sync.fastpath.catalog import Shape, read_shapes
from tenant_sync.options import SyncOptions
from tenant_sync.plan import ignored_tables


def make_schemas(engine: Engine, names: list[str]) -> None:
    """Create empty schemas (tenants not yet built)."""
    preparer = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        for name in names:
            conn.execute(sa.text(f"CREATE SCHEMA {preparer.quote_identifier(name)}"))


def columns(engine: Engine, schema: str, table: str) -> dict[str, str]:
    """Column name -> formatted type of a table in a schema."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
                " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relname = :table"
                " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
            ),
            {"schema": schema, "table": table},
        )
        return dict(rows.all())


def tables(engine: Engine, schema: str) -> set[str]:
    """Names of the ordinary tables in a schema."""
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=schema))


def catalog_snapshot(engine: Engine) -> list[tuple[object, ...]]:
    """Everything about user schemas that a sync could change, as comparable rows.

    Schemas, relations (tables, indexes, sequences) with their kind, columns with type,
    default, nullability and comment, constraints with definitions, types.
    """
    queries = [
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' ORDER BY 1",
        # The memo on the version table is tenant_sync's bookkeeping, as its row is.
        "SELECT n.nspname, c.relname, c.relkind, CASE WHEN obj_description(c.oid, 'pg_class')"
        " LIKE 'tenant\\_sync shape %' THEN NULL ELSE obj_description(c.oid, 'pg_class') END"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1, 2",
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
        " a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, 3",
        "SELECT n.nspname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1, 2",
        "SELECT n.nspname, t.typname, t.typtype FROM pg_type t"
        " JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1, 2",
    ]
    with engine.connect() as conn:
        return [tuple(row) for query in queries for row in conn.execute(sa.text(query))]


def build_with_create_all(engine: Engine, metadata: sa.MetaData, schema: str) -> None:
    """Build the model's tenant tables in a new ``schema`` with ``metadata.create_all``.

    The yardstick of a sync: what SQLAlchemy itself makes of the model.
    """
    tenant_tables = [table for table in metadata.tables.values() if table.schema is None]
    preparer = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {preparer.quote_identifier(schema)}"))
        conn.execute(sa.text("SELECT set_config('search_path', :path, true)"), {"path": schema})
        metadata.create_all(conn, tables=tenant_tables)


def schema_definition(engine: Engine, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """A schema's tables, columns, constraints, indexes and enum types, as comparable rows.

    Independent of column order and of the schema's name (written out of every
    definition), so a tenant can be compared with a schema built by create_all.  The
    tenant_sync and Alembic version tables are left out.
    """
    prefix = f"{schema}."
    bookkeeping = ["tenant_sync_version", "tenant_sync_history", "alembic_version"]
    queries = {
        "tables": "SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class')"
        " FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname <> ALL(:bookkeeping)",
        "columns": "SELECT c.relname, a.attname,"
        " replace(format_type(a.atttypid, a.atttypmod), :prefix, ''),"
        " a.attnotnull, replace(pg_get_expr(d.adbin, d.adrelid), :prefix, ''),"
        " col_description(c.oid, a.attnum), a.attidentity, a.attgenerated, a.attcollation,"
        " (SELECT row(s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)"
        "  ::text FROM pg_sequence s WHERE a.attidentity <> '' AND s.seqrelid"
        "  = pg_get_serial_sequence(c.oid::regclass::text, a.attname)::regclass)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind IN ('r', 'p')"
        " AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> ALL(:bookkeeping)",
        "constraints": "SELECT c.relname, k.conname, k.contype,"
        " replace(pg_get_constraintdef(k.oid), :prefix, '')"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relname <> ALL(:bookkeeping)",
        "indexes": "SELECT tablename, indexname, replace(indexdef, :prefix, '')"
        " FROM pg_indexes WHERE schemaname = :schema AND tablename <> ALL(:bookkeeping)",
        "enums": "SELECT t.typname,"
        " string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)"
        " FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid"
        " WHERE t.typnamespace = CAST(:schema AS regnamespace) GROUP BY t.typname",
    }
    params = {"schema": schema, "prefix": prefix, "bookkeeping": bookkeeping}
    with engine.connect() as conn:
        return {
            kind: sorted((tuple(row) for row in conn.execute(sa.text(query), params)), key=repr)
            for kind, query in queries.items()
        }


def differences(
    engine: Engine, schema: str, reference: str
) -> dict[str, list[tuple[str, tuple[object, ...]]]]:
    """What ``schema`` has that ``reference`` lacks, and the reverse, by kind; empty if equal."""
    mine, theirs = schema_definition(engine, schema), schema_definition(engine, reference)
    found: dict[str, list[tuple[str, tuple[object, ...]]]] = {}
    for kind in mine:
        only_mine = sorted(set(mine[kind]) - set(theirs[kind]), key=repr)
        only_theirs = sorted(set(theirs[kind]) - set(mine[kind]), key=repr)
        if only_mine or only_theirs:
            found[kind] = [("tenant only", row) for row in only_mine] + [
                ("model only", row) for row in only_theirs
            ]
    return found


def relfilenode(engine: Engine, schema: str, table: str) -> int:
    """The table's file on disk: the same after a change that rewrites nothing, new after a rewrite."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT pg_relation_filenode(CAST(:name AS regclass))"),
            {"name": f"{schema}.{table}"},
        ).scalar_one()
    assert isinstance(value, int)
    return value


def require_loopback() -> None:
    """Skip the calling test, saying why, where 127.0.0.1 cannot be reached (a network
    namespace whose loopback is down, as ``unshare -n`` makes it)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        try:
            socket.create_connection(listener.getsockname(), timeout=1).close()
        except OSError as exc:
            pytest.skip(f"no loopback network here (127.0.0.1: {exc.strerror})")


def shapes_of(engine: Engine, names: list[str]) -> dict[str, Shape]:
    """The catalog pass's shape of each named tenant, read as a sync reads it."""
    with engine.begin() as conn:
        return read_shapes(conn, names, ignored_tables(SyncOptions()), "tenant_sync_version")
