"""Fingerprints of tenant structure, for all tenants in one pass over the catalog.

A tenant's *shape* is everything Alembic's comparison looks at: relations, columns
(type, nullability, default, comment, identity), constraints, indexes, enum types,
comments.  Names that embed the tenant's own schema (``nextval('t1.seq')``,
``REFERENCES t1.accounts``) are written without it, so two tenants built from the same
model have the same fingerprint.  Tenants of one shape get the same diff.

The pass reaches every relation by index lookups, so its cost grows linearly with
the number of tenants (a per-schema scan of pg_class would make it quadratic).  It also
takes each tenant's *stamp*, a digest of its catalog rows' versions, which
:func:`recheck_statement` recomputes cheaply under the tenant's lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .locking import literal

__all__ = ["SHAPE_CHANGED_SQLSTATE", "Shape", "recheck_statement", "structure_fingerprints"]

#: The fingerprint of a schema without any relation or type.
EMPTY_FINGERPRINT = "empty"

#: The stamp of a schema without any relation or type.
EMPTY_STAMP = "0:0"

#: The SQLSTATE :func:`recheck_statement` raises when the tenant's shape has changed.
SHAPE_CHANGED_SQLSTATE = "TS001"


@dataclass(frozen=True)
class Shape:
    """One tenant's structure in short: its fingerprint, and what the recheck needs."""

    fingerprint: str
    relations: tuple[str, ...]
    enum_types: tuple[str, ...]
    has_version_table: bool
    #: The comment on the tenant's version table: where tenant_sync records shapes
    #: found to match the model (see :mod:`tenant_sync.shapes`).
    version_comment: str = ""
    #: This tenant's catalog rows at the time of the pass (see :func:`recheck_statement`).
    stamp: str = EMPTY_STAMP


# All text is rendered with search_path = pg_catalog, so every name outside pg_catalog
# comes out schema-qualified, and the tenant's own prefix can be stripped reliably.
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
# and the tenant's prefix stripped (also as it appears inside a quoted literal, such as
# nextval('"it''s".seq'), where a quote in the name is doubled).
#
# Cost must stay linear in the number of tenants, whatever the planner believes: the
# catalog's statistics are often stale after mass DDL (seen: 496 namespaces estimated,
# 10,004 present), and a misestimated join read every pg_attribute row of the database
# for each chunk.  So every per-relation catalog is read through a LATERAL subquery
# fenced by OFFSET 0: an index lookup per relation, never a join over the whole catalog.
#
# Each item also carries its catalog rows' transaction ids (xmin), summed as 64-bit
# hashes into the tenant's *stamp*.  Any change to a catalog row gives it a new xmin,
# one no row visible to the pass had, so a tenant whose stamp is unchanged under its
# lock has the structure the pass saw; the recheck computes only the stamp, without
# rendering any text, in well under half the time of the fingerprint.

# The items that describe a tenant, from ``rels`` (oid, xmin, nsp, prefix, relname,
# relkind) and ``enums`` (oid, xmin, nsp, typname): the text of each (the fingerprint)
# and the hashes of its catalog rows' xmin (the stamp, over the rows _STAMP_SQL reads).
_ITEMS_SQL = r"""
    SELECT r.nsp, 'R ' || r.relkind::text || ' ' || quote_ident(r.relname)
        || coalesce(' -- ' || d.description, '') AS item,
        hashtextextended(CAST(r.xmin AS text), 0)::numeric + coalesce(hashtextextended(CAST(d.xmin AS text), 0)::numeric, 0) AS part,
        1 + CAST(d.xmin IS NOT NULL AS int) AS n
    FROM rels r
    LEFT JOIN LATERAL (
        SELECT d.description, d.xmin FROM pg_catalog.pg_description d
        WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
            AND d.objsubid = 0
        OFFSET 0
    ) d ON true
    UNION ALL
    SELECT r.nsp, 'C ' || quote_ident(r.relname) || '.' || quote_ident(a.attname)
        || ' ' || a.attnum::text || ' '
        || CASE WHEN a.own_type THEN quote_ident(a.typname) ELSE a.atttypid::text END
        || ' ' || a.atttypmod::text
        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        || ' ' || a.attidentity::text || a.attgenerated::text
        || coalesce(' DEFAULT ' || CASE WHEN a.attgenerated = ''
                THEN replace(replace(pg_catalog.pg_get_expr(a.adbin, 0), r.prefix, ''),
                    replace(r.prefix, '''', ''''''), '')
                ELSE regexp_replace(CAST(a.adbin AS text), ' \:location -?[0-9]+', '', 'g') END, '')
        || coalesce(' -- ' || a.description, ''),
        hashtextextended(CAST(a.a_xmin AS text), 0)::numeric + coalesce(hashtextextended(CAST(a.ad_xmin AS text), 0)::numeric, 0) + coalesce(hashtextextended(CAST(a.d_xmin AS text), 0)::numeric, 0)
            + CASE WHEN a.own_type THEN hashtextextended(CAST(a.ty_xmin AS text), 0)::numeric ELSE 0 END,
        1 + CAST(a.ad_xmin IS NOT NULL AS int) + CAST(a.d_xmin IS NOT NULL AS int)
            + CAST(a.own_type AS int)
    FROM rels r
    CROSS JOIN LATERAL (
        SELECT a.attname, a.attnum, a.atttypid, a.atttypmod, a.attnotnull, a.attidentity,
            a.attgenerated, coalesce(ty.typnamespace = r.nsp, false) AS own_type, ty.typname,
            ad.adbin, d.description,
            a.xmin AS a_xmin, ty.xmin AS ty_xmin, ad.xmin AS ad_xmin, d.xmin AS d_xmin
        FROM pg_catalog.pg_attribute a
        -- Built-in types (oids below 16384, FirstNormalObjectId) are named by oid, so
        -- only the types users created are looked up; the tenant's own are among them.
        LEFT JOIN LATERAL (
            SELECT ty.typnamespace, ty.typname, ty.xmin FROM pg_catalog.pg_type ty
            WHERE a.atttypid >= 16384 AND ty.oid = a.atttypid
            OFFSET 0
        ) ty ON true
        -- A default is looked up only for a column that has one.
        LEFT JOIN LATERAL (
            SELECT ad.adbin, ad.xmin FROM pg_catalog.pg_attrdef ad
            WHERE a.atthasdef AND ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            OFFSET 0
        ) ad ON true
        LEFT JOIN pg_catalog.pg_description d ON d.objoid = a.attrelid
            AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = a.attnum
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        OFFSET 0
    ) a
    UNION ALL
    SELECT r.nsp, 'K ' || quote_ident(r.relname) || ' ' || quote_ident(k.conname)
        || ' ' || k.contype::text || ' ' || coalesce(k.conkey::text, '')
        || ' ' || coalesce(k.confkey::text, '') || ' '
        || coalesce(CASE WHEN k.frelnamespace = r.nsp THEN quote_ident(k.frelname)
                         ELSE k.confrelid::text END, '')
        || ' ' || k.confupdtype::text || k.confdeltype::text || k.confmatchtype::text
        || ' ' || k.condeferrable::text || k.condeferred::text || k.convalidated::text
        || ' ' || coalesce(k.conexclop::text, '') || ' ' || coalesce(regexp_replace(CAST(k.conbin AS text), ' \:location -?[0-9]+', '', 'g'), ''),
        hashtextextended(CAST(k.k_xmin AS text), 0)::numeric, 1
    FROM rels r
    CROSS JOIN LATERAL (
        SELECT k.*, k.xmin AS k_xmin, f.relnamespace AS frelnamespace, f.relname AS frelname
        FROM pg_catalog.pg_constraint k
        LEFT JOIN pg_catalog.pg_class f ON f.oid = k.confrelid
        WHERE k.conrelid = r.oid
        OFFSET 0
    ) k
    UNION ALL
    SELECT r.nsp, 'I ' || quote_ident(i.relname) || ' ' || i.relam::text
        || ' ' || i.indisunique::text || i.indisprimary::text || ' ' || i.indnkeyatts::text
        || ' ' || i.indkey::text || ' ' || i.indclass::text || ' ' || i.indoption::text
        || ' ' || i.indcollation::text
        || coalesce(' ON ' || regexp_replace(CAST(i.indexprs AS text), ' \:location -?[0-9]+', '', 'g'), '')
        || coalesce(' WHERE ' || regexp_replace(CAST(i.indpred AS text), ' \:location -?[0-9]+', '', 'g'), ''),
        hashtextextended(CAST(i.i_xmin AS text), 0)::numeric + hashtextextended(CAST(i.ic_xmin AS text), 0)::numeric, 2
    FROM rels r
    CROSS JOIN LATERAL (
        SELECT i.*, i.xmin AS i_xmin, ic.xmin AS ic_xmin, ic.relname, ic.relam
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = r.oid
        OFFSET 0
    ) i
    UNION ALL
    SELECT e.nsp, 'T ' || quote_ident(e.typname) || ' ' || l.labels,
        hashtextextended(CAST(e.xmin AS text), 0)::numeric + l.part, 1 + l.n
    FROM enums e
    CROSS JOIN LATERAL (
        SELECT string_agg(quote_literal(l.enumlabel), ',' ORDER BY l.enumsortorder) AS labels,
            coalesce(sum(hashtextextended(CAST(l.xmin AS text), 0)::numeric), 0) AS part, count(*) AS n
        FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid
    ) l
"""

# A tenant's relations and types are found through their dependency on the schema:
# pg_depend is indexed by the object depended on, while pg_class and pg_type have no
# index by schema (a scan of either per chunk would grow with the whole database).
# Every table, view, sequence and standalone type records that dependency; indexes
# and row or array types do not, and are reached through their table.
_BULK_SQL = """
WITH tenants AS (
    SELECT n.oid AS nsp, n.nspname, quote_ident(n.nspname) || '.' AS prefix
    FROM unnest(CAST(:schemas AS text[])) AS wanted(name)
    JOIN pg_catalog.pg_namespace n ON n.nspname = wanted.name
),
members AS MATERIALIZED (
    SELECT t.nsp, t.prefix, m.classid, m.objid, m.xmin
    FROM tenants t
    CROSS JOIN LATERAL (
        SELECT d.classid, d.objid, d.xmin FROM pg_catalog.pg_depend d
        WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = t.nsp
            AND d.refobjsubid = 0 AND d.deptype = 'n'
        OFFSET 0
    ) m
),
all_rels AS MATERIALIZED (
    SELECT c.oid, c.xmin, m.nsp, m.prefix, c.relname, c.relkind
    FROM members m
    CROSS JOIN LATERAL (
        SELECT c.oid, c.xmin, c.relname, c.relkind FROM pg_catalog.pg_class c
        WHERE c.oid = m.objid AND c.relnamespace = m.nsp
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        OFFSET 0
    ) c
    WHERE m.classid = 'pg_catalog.pg_class'::regclass
),
rels AS (
    SELECT * FROM all_rels WHERE relname <> ALL(CAST(:ignored AS text[]))
),
enums AS MATERIALIZED (
    SELECT ty.oid, ty.xmin, m.nsp, ty.typname
    FROM members m
    CROSS JOIN LATERAL (
        SELECT ty.oid, ty.xmin, ty.typname FROM pg_catalog.pg_type ty
        WHERE ty.oid = m.objid AND ty.typnamespace = m.nsp AND ty.typtype = 'e'
        OFFSET 0
    ) ty
    WHERE m.classid = 'pg_catalog.pg_type'::regclass
),
items AS (
{items}
    UNION ALL
    -- Membership in the schema: in the stamp only, so that a relation or type added
    -- after the pass changes it.
    SELECT nsp, NULL, hashtextextended(CAST(xmin AS text), 0)::numeric, 1 FROM members
),
fingerprints AS (
    SELECT nsp, md5(string_agg(item, E'\n' ORDER BY item COLLATE "C")) AS fingerprint,
        sum(n)::text || ':' || sum(part)::text AS stamp
    FROM items GROUP BY nsp
),
relation_names AS (
    SELECT nsp,
        array_agg(relname ORDER BY relname)
            FILTER (WHERE relname <> ALL(CAST(:ignored AS text[]))) AS relations,
        bool_or(relname = :version_table) AS has_version_table
    FROM all_rels GROUP BY nsp
),
version_comments AS (
    SELECT r.nsp, d.description
    FROM all_rels r
    CROSS JOIN LATERAL (
        SELECT d.description FROM pg_catalog.pg_description d
        WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
            AND d.objsubid = 0
        OFFSET 0
    ) d
    WHERE r.relname = :version_table
),
enum_names AS (
    SELECT nsp, array_agg(typname ORDER BY typname) AS enum_types FROM enums GROUP BY nsp
)
SELECT t.nspname, f.fingerprint, rn.relations, en.enum_types, rn.has_version_table,
    vc.description, f.stamp
FROM tenants t
LEFT JOIN fingerprints f ON f.nsp = t.nsp
LEFT JOIN relation_names rn ON rn.nsp = t.nsp
LEFT JOIN enum_names en ON en.nsp = t.nsp
LEFT JOIN version_comments vc ON vc.nsp = t.nsp
"""

# One tenant's stamp, over the same catalog rows as its items above, or NULL when the
# schema is gone or the role may not use and create in it.  Parameters: $1 the schema,
# $2 its relations, $3 its enum types, as the pass saw them; they are looked up by name,
# so every lookup is on a catalog index.  As in the pass, per-relation catalogs are read
# through LATERAL ... OFFSET 0: with a plain ``IN (SELECT oid FROM rels)`` the planner,
# misled by stale statistics, was seen to hash-join a sequential scan of all of
# pg_attrdef for each tenant (12 ms at 1,000 tenants instead of 1, and growing with the
# database).
_STAMP_SQL = """
WITH tenant AS (
    SELECT oid AS nsp FROM pg_catalog.pg_namespace WHERE nspname = $1
        AND pg_catalog.has_schema_privilege(oid, 'USAGE')
        AND pg_catalog.has_schema_privilege(oid, 'CREATE')
),
rels AS MATERIALIZED (
    SELECT c.oid, c.xmin FROM pg_catalog.pg_class c
    WHERE c.relname = ANY($2) AND c.relnamespace = (SELECT nsp FROM tenant)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
),
enums AS MATERIALIZED (
    SELECT ty.oid, ty.xmin FROM pg_catalog.pg_type ty
    WHERE ty.typname = ANY($3) AND ty.typnamespace = (SELECT nsp FROM tenant)
        AND ty.typtype = 'e'
),
catalog_rows AS (
    SELECT xmin FROM rels
    UNION ALL
    SELECT x.xmin FROM rels r CROSS JOIN LATERAL (
        SELECT d.xmin FROM pg_catalog.pg_description d
        WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
        UNION ALL
        SELECT a.xmin FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT ty.xmin FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
        WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
            AND a.atttypid >= 16384 AND ty.typnamespace = (SELECT nsp FROM tenant)
        UNION ALL
        SELECT ad.xmin FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = r.oid
        UNION ALL
        SELECT k.xmin FROM pg_catalog.pg_constraint k WHERE k.conrelid = r.oid
        UNION ALL
        SELECT i.xmin FROM pg_catalog.pg_index i WHERE i.indrelid = r.oid
        UNION ALL
        SELECT ic.xmin FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = r.oid
        OFFSET 0
    ) x
    UNION ALL
    SELECT xmin FROM enums
    UNION ALL
    SELECT l.xmin FROM enums e CROSS JOIN LATERAL (
        SELECT l.xmin FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid OFFSET 0
    ) l
    UNION ALL
    SELECT d.xmin FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass
        AND d.refobjid = (SELECT nsp FROM tenant) AND d.refobjsubid = 0 AND d.deptype = 'n'
)
SELECT CASE WHEN EXISTS (SELECT FROM tenant) THEN count(*)::text || ':'
    || coalesce(sum(hashtextextended(CAST(xmin AS text), 0)::numeric), 0)::text END
FROM catalog_rows
"""


# The recheck runs _STAMP_SQL through a function in the session's own temporary schema,
# made on first use: PL/pgSQL keeps a function's plans for the session, where a DO block
# plans its query anew each time (1.3-1.8 ms a tenant against 0.6 ms, measured).  The
# function sets its own search_path, or the plan would be made again for every tenant,
# each of which sets search_path to itself.  The name carries a digest of the
# definition, so two versions of tenant_sync never share one.  A role without the
# TEMPORARY privilege runs the query itself, planned each time.  Made inside the
# tenant's transaction, the function goes when that rolls back, and is made again.
_STAMP_FUNCTION = (
    "pg_temp.tenant_sync_stamp_" + hashlib.sha256(_STAMP_SQL.encode()).hexdigest()[:12]
)
_STAMP_SIGNATURE = f"{_STAMP_FUNCTION}(text, text[], text[])"
_CREATE_STAMP_FUNCTION = (
    f"CREATE FUNCTION {_STAMP_SIGNATURE} RETURNS text LANGUAGE plpgsql STABLE"
    " SET search_path = pg_catalog AS $stamp$BEGIN RETURN (" + _STAMP_SQL + "); END$stamp$"
)
# The constant parts of the recheck, as SQL literals, written once.
_SIGNATURE_LITERAL = literal(_STAMP_SIGNATURE)
_CREATE_LITERAL = literal(_CREATE_STAMP_FUNCTION)
_QUERY_LITERAL = literal(_STAMP_SQL)


def _recheck_body(arguments: str, expected: str) -> str:
    return f"""DECLARE
    stamp text;
BEGIN
    IF pg_catalog.to_regprocedure({_SIGNATURE_LITERAL}) IS NOT NULL THEN
        stamp := {_STAMP_FUNCTION}({arguments});
    ELSIF pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMPORARY') THEN
        EXECUTE {_CREATE_LITERAL};
        stamp := {_STAMP_FUNCTION}({arguments});
    ELSE
        EXECUTE {_QUERY_LITERAL} INTO stamp USING {arguments};
    END IF;
    IF stamp IS DISTINCT FROM {expected} THEN
        RAISE EXCEPTION USING ERRCODE = '{SHAPE_CHANGED_SQLSTATE}',
            MESSAGE = 'tenant changed since the catalog pass';
    END IF;
END"""


def structure_fingerprints(
    conn: Connection, schemas: Sequence[str], ignored: Sequence[str], version_table: str
) -> dict[str, Shape]:
    """The shape of every named schema that exists, in one query.

    Sets ``search_path`` to ``pg_catalog`` for the rest of the caller's transaction, so
    that every name outside it is rendered qualified and the tenant's prefix stripped.
    """
    # The sort of every item of the chunk stays in memory (tens of MB); compiling this
    # query with JIT took longer than running it.
    conn.execute(
        sa.text(
            "SELECT set_config('search_path', 'pg_catalog', true),"
            " set_config('work_mem', '64MB', true), set_config('jit', 'off', true)"
        )
    )
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
            version_comment=version_comment or "",
            stamp=stamp or EMPTY_STAMP,
        )
        for name, fingerprint, relations, enum_types, has_version_table, version_comment, stamp in rows
    }


def recheck_statement(schema: str, shape: Shape, ignored: Sequence[str]) -> str:
    """A ``DO`` statement that fails unless ``schema`` is as the catalog pass saw it.

    ``shape`` is the tenant's own, from the pass.  The statement raises
    :data:`SHAPE_CHANGED_SQLSTATE` when the tenant's stamp differs (a catalog row of it
    changed since), or when the schema is gone or the role may not use and create in
    it; the caller then compares the tenant alone, which names the precise problem.
    Meant to run under the tenant's lock, in its transaction.  Values are written in
    as literals, so the statement can join a batch sent in one round trip.

    The relations and enum types the pass saw are looked up by name, and the schema's
    members through ``pg_depend`` (so a relation or type added since the pass changes
    the stamp too): the query stays on catalog indexes however many tenants the
    database holds.  It runs in a session-local function whose plan is kept (the
    function is left in the connection's temporary schema).
    """
    arguments = ", ".join(
        [
            literal(schema),
            _text_array(r for r in shape.relations if r not in ignored),
            _text_array(shape.enum_types),
        ]
    )
    return f"DO {_dollar_quoted(_recheck_body(arguments, literal(shape.stamp)))}"


def _text_array(values: Iterable[str]) -> str:
    return f"CAST(ARRAY[{', '.join(literal(value) for value in values)}] AS text[])"


def _dollar_quoted(body: str) -> str:
    """``body`` between dollar quotes whose tag it does not contain (names may hold ``$``)."""
    tag, number = "$tenant_sync$", 0
    while tag in body:
        number += 1
        tag = f"$tenant_sync{number}$"
    return f"{tag}{body}{tag}"
