"""Helpers the tests share: make tenants, read the catalog, count rows."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine


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
        "SELECT n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class')"
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
