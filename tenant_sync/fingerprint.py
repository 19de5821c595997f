"""Fingerprints of tenant structure, for all tenants in one pass over the catalog.

A tenant's *shape* is everything Alembic's comparison looks at: relations, columns
(type, nullability, default, comment, identity), constraints, indexes, enum types,
comments.  Names that embed the tenant's own schema (``nextval('t1.seq')``,
``REFERENCES t1.accounts``) are written without it, so two tenants built from the same
model have the same fingerprint.  Tenants of one shape get the same diff.

The query reads each catalog once, joined on the tenants' namespace oids, so its
cost grows linearly with the number of tenants (a per-schema scan of pg_class would
make it quadratic).  :func:`recheck_fingerprint` computes one tenant's fingerprint the
same way, driven by the shape's relation names so that it stays on catalog indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["Shape", "recheck_fingerprint", "structure_fingerprints"]

#: The fingerprint of a schema without any relation or type.
EMPTY_FINGERPRINT = "empty"


@dataclass(frozen=True)
class Shape:
    """One tenant's structure in short: its fingerprint, and what the recheck needs."""

    fingerprint: str
    relations: tuple[str, ...]
    enum_types: tuple[str, ...]
    has_version_table: bool


# {relation_filter} and {type_filter} narrow the recheck to index lookups; for the bulk
# pass they are empty.  All text is rendered with search_path = pg_catalog, so every
# name outside pg_catalog comes out schema-qualified and the tenant's own prefix can be
# stripped reliably.
#
# pg_get_indexdef(), and pg_get_expr()/pg_get_constraintdef() on expressions that name
# columns, take a lock on the table: one locked tenant would stall the whole pass.  They
# are also slow.  So columns, constraints and indexes are described by their catalog
# fields: column numbers, type oids (names for the tenant's own types, whose oids differ
# per tenant), and expression trees less their parse locations.  Two tenants built by
# the same history get the same text; two that differ in any way the model sees get
# different text (tenants that differ only in column order get two shapes, which costs
# one more comparison, never a wrong plan).  Column defaults, which name the tenant's
# own sequences and types, are rendered by pg_get_expr() without a relation (no lock)
# and the tenant's prefix stripped.

# The items that describe a tenant, from ``rels`` (oid, nsp, prefix, relname, relkind),
# ``enums`` (oid, nsp, typname) and ``descriptions`` (the comments on ``rels``); shared by the bulk pass and the recheck, so both
# compute the same fingerprint.
_ITEMS_SQL = """
    SELECT r.nsp, 'R ' || r.relkind::text || ' ' || quote_ident(r.relname)
        || coalesce(' -- ' || d.description, '') AS item
    FROM rels r
    LEFT JOIN descriptions d ON d.objoid = r.oid AND d.objsubid = 0
    UNION ALL
    SELECT r.nsp, 'C ' || quote_ident(r.relname) || '.' || quote_ident(a.attname)
        || ' ' || a.attnum::text || ' '
        || CASE WHEN ty.typnamespace = r.nsp THEN quote_ident(ty.typname)
                ELSE a.atttypid::text END
        || ' ' || a.atttypmod::text
        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        || ' ' || a.attidentity::text || a.attgenerated::text
        || coalesce(' DEFAULT ' || CASE WHEN a.attgenerated = ''
                THEN replace(pg_catalog.pg_get_expr(ad.adbin, 0), r.prefix, '')
                ELSE regexp_replace(CAST(ad.adbin AS text), ' \\:location -?[0-9]+', '', 'g') END, '')
        || coalesce(' -- ' || d.description, '')
    FROM rels r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN descriptions d ON d.objoid = r.oid AND d.objsubid = a.attnum
    UNION ALL
    SELECT r.nsp, 'K ' || quote_ident(r.relname) || ' ' || quote_ident(k.conname)
        || ' ' || k.contype::text || ' ' || coalesce(k.conkey::text, '')
        || ' ' || coalesce(k.confkey::text, '') || ' '
        || coalesce(CASE WHEN f.relnamespace = r.nsp THEN quote_ident(f.relname)
                         ELSE f.oid::text END, '')
        || ' ' || k.confupdtype::text || k.confdeltype::text || k.confmatchtype::text
        || ' ' || k.condeferrable::text || k.condeferred::text || k.convalidated::text
        || ' ' || coalesce(k.conexclop::text, '') || ' ' || coalesce(regexp_replace(CAST(k.conbin AS text), ' \\:location -?[0-9]+', '', 'g'), '')
    FROM rels r
    JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid
    LEFT JOIN pg_catalog.pg_class f ON f.oid = k.confrelid
    UNION ALL
    SELECT r.nsp, 'I ' || quote_ident(ic.relname) || ' ' || ic.relam::text
        || ' ' || i.indisunique::text || i.indisprimary::text || ' ' || i.indnkeyatts::text
        || ' ' || i.indkey::text || ' ' || i.indclass::text || ' ' || i.indoption::text
        || ' ' || i.indcollation::text
        || coalesce(' ON ' || regexp_replace(CAST(i.indexprs AS text), ' \\:location -?[0-9]+', '', 'g'), '')
        || coalesce(' WHERE ' || regexp_replace(CAST(i.indpred AS text), ' \\:location -?[0-9]+', '', 'g'), '')
    FROM rels r
    JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT e.nsp, 'T ' || quote_ident(e.typname) || ' ' || (
        SELECT string_agg(quote_literal(l.enumlabel), ',' ORDER BY l.enumsortorder)
        FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid)
    FROM enums e
"""

_BULK_SQL = """
WITH tenants AS (
    SELECT n.oid AS nsp, n.nspname, quote_ident(n.nspname) || '.' AS prefix
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname = ANY(CAST(:schemas AS text[]))
),
all_rels AS (
    SELECT c.oid, t.nsp, t.prefix, c.relname, c.relkind
    FROM pg_catalog.pg_class c JOIN tenants t ON t.nsp = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
),
rels AS (
    SELECT * FROM all_rels WHERE relname <> ALL(CAST(:ignored AS text[]))
),
enums AS (
    SELECT ty.oid, t.nsp, ty.typname
    FROM pg_catalog.pg_type ty JOIN tenants t ON t.nsp = ty.typnamespace
    WHERE ty.typtype = 'e'
),
descriptions AS (
    SELECT d.objoid, d.objsubid, d.description
    FROM pg_catalog.pg_description d JOIN rels r ON d.objoid = r.oid
    WHERE d.classoid = 'pg_catalog.pg_class'::regclass
),
items AS (
{items}),
fingerprints AS (
    SELECT nsp, md5(string_agg(item, E'\\n' ORDER BY item COLLATE "C")) AS fingerprint
    FROM items GROUP BY nsp
),
relation_names AS (
    SELECT nsp,
        array_agg(relname ORDER BY relname)
            FILTER (WHERE relname <> ALL(CAST(:ignored AS text[]))) AS relations,
        bool_or(relname = :version_table) AS has_version_table
    FROM all_rels GROUP BY nsp
),
enum_names AS (
    SELECT nsp, array_agg(typname ORDER BY typname) AS enum_types FROM enums GROUP BY nsp
)
SELECT t.nspname, f.fingerprint, rn.relations, en.enum_types, rn.has_version_table
FROM tenants t
LEFT JOIN fingerprints f ON f.nsp = t.nsp
LEFT JOIN relation_names rn ON rn.nsp = t.nsp
LEFT JOIN enum_names en ON en.nsp = t.nsp
"""

# One tenant, by name: every lookup is on a catalog index, and the query is small enough
# to plan in well under a millisecond (it runs once per tenant, under its lock).
_RECHECK_SQL = """
WITH tenant AS (
    SELECT oid AS nsp FROM pg_catalog.pg_namespace WHERE nspname = :schema
),
rels AS (
    SELECT c.oid, c.relnamespace AS nsp, '' AS prefix, c.relname, c.relkind
    FROM pg_catalog.pg_class c
    WHERE c.relname = ANY(CAST(:relations AS text[]))
        AND c.relnamespace = (SELECT nsp FROM tenant)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
),
enums AS (
    SELECT ty.oid, ty.typnamespace AS nsp, ty.typname
    FROM pg_catalog.pg_type ty
    WHERE ty.typname = ANY(CAST(:enum_types AS text[]))
        AND ty.typnamespace = (SELECT nsp FROM tenant) AND ty.typtype = 'e'
),
descriptions AS (
    SELECT d.objoid, d.objsubid, d.description
    FROM pg_catalog.pg_description d JOIN rels r ON d.objoid = r.oid
    WHERE d.classoid = 'pg_catalog.pg_class'::regclass
),
items AS (
{items})
SELECT md5(string_agg(item, E'\\n' ORDER BY item COLLATE "C")) FROM items
"""


def structure_fingerprints(
    conn: Connection, schemas: Sequence[str], ignored: Sequence[str], version_table: str
) -> dict[str, Shape]:
    """The shape of every named schema that exists, in one query.

    Sets ``search_path`` to ``pg_catalog`` for the rest of the caller's transaction, so
    that every name outside it is rendered qualified and the tenant's prefix stripped.
    """
    conn.execute(sa.text("SELECT set_config('search_path', 'pg_catalog', true)"))
    rows = conn.execute(
        sa.text(_BULK_SQL.format(items=_ITEMS_SQL)),
        {"schemas": list(schemas), "ignored": list(ignored), "version_table": version_table},
    )
    return {
        name: Shape(
            fingerprint=fingerprint or EMPTY_FINGERPRINT,
            relations=tuple(relations or ()),
            enum_types=tuple(enum_types or ()),
            has_version_table=bool(has_version_table),
        )
        for name, fingerprint, relations, enum_types, has_version_table in rows
    }


def recheck_fingerprint(
    conn: Connection, schema: str, expected: Shape, ignored: Sequence[str]
) -> bool:
    """True when ``schema`` still has the ``expected`` shape (run under the tenant's lock).

    Runs in the tenant's own transaction, whose ``search_path`` is the tenant alone:
    its own objects are then rendered unqualified, exactly as the bulk pass renders them
    once it has stripped the tenant's prefix.

    Only the relations and enum types of the expected shape are looked up, by name, so
    the query stays on catalog indexes however many tenants the database holds.  A
    relation added since the bulk pass is not seen here; the next run sees it.
    """
    relations = [name for name in expected.relations if name not in ignored]
    found = conn.execute(
        sa.text(_RECHECK_SQL.format(items=_ITEMS_SQL)),
        {"schema": schema, "relations": relations, "enum_types": list(expected.enum_types)},
    ).scalar()
    return (found or EMPTY_FINGERPRINT) == expected.fingerprint
