-- The shape of every tenant of a chunk, in one query (see catalog.py).
--
-- Bound parameters: schemas (text[]) the tenant schemas, ignored (text[]) the
-- bookkeeping tables left out of the shape, version_table (text) the version table,
-- history_table (text) the history table,
-- min_rows (float8) the fewest rows of a table that takes the online path (NULL: none
-- does; see tenant_sync/online/big_tables.sql for how rows are counted without a lock).
-- Run with search_path = pg_catalog, so that every name outside pg_catalog comes out
-- schema-qualified and the tenant's own prefix can be stripped reliably.
--
-- A tenant's relations and types are found through their dependency on the schema:
-- pg_depend is indexed by the object depended on, while pg_class and pg_type have no
-- index by schema (a scan of either per chunk would grow with the whole database).
-- Every table, view, sequence and standalone type records that dependency; indexes
-- and row or array types do not, and are reached through their table.
--
-- Cost must stay linear in the number of tenants, whatever the planner believes: the
-- catalog's statistics are often stale after mass DDL (seen: 496 namespaces estimated,
-- 10,004 present), and a misestimated join read every pg_attribute row of the database
-- for each chunk.  So every per-relation catalog is read through a LATERAL subquery
-- fenced by OFFSET 0: an index lookup per relation, never a join over the whole catalog.
--
-- pg_get_indexdef(), and pg_get_expr()/pg_get_constraintdef() on expressions that name
-- columns, take a lock on the table: one locked tenant would stall the whole pass.  They
-- are also slow.  So columns, constraints and indexes are described by their catalog
-- fields: column numbers, the oids of built-in types, the names of other types (a
-- tenant's own types by name alone) and of the tables a foreign key references outside
-- the tenant, and expression trees less their parse locations.  Names, not oids, because
-- oids differ from tenant to tenant and from database to database: a fleet's databases
-- on one server share the comparison of a shape (see fastpath/shared.py).  Two tenants
-- built by the same history get the same text; two that differ in any way the model sees get
-- different text (tenants that differ only in column order get two shapes, which costs
-- one more comparison, never a wrong plan).  Column defaults, which name the tenant's
-- own sequences and types, are rendered by pg_get_expr() without a relation (no lock)
-- and the tenant's prefix stripped (also as it appears inside a quoted literal, such as
-- nextval('"it''s".seq'), where a quote in the name is doubled).
--
-- Each tenant also gets a stamp: its catalog rows' transaction ids (xmin), summed as
-- 64-bit hashes, over the same rows as stamp.sql.  Any change to a catalog row gives it
-- a new xmin, one no row visible to the pass had, so a tenant whose stamp is unchanged
-- under its lock has the structure the pass saw.  The stamp costs well under half of
-- the text, so the text is rendered only where it is not known already: a round trip
-- that leaves a tenant equal to the model records its stamp and fingerprint in a
-- comment on its version table (the memo, see memo.py), and a tenant whose stamp still
-- equals its memo's has the memo's fingerprint.
WITH tenants AS (
    SELECT n.oid AS nsp, n.nspname, quote_ident(n.nspname) || '.' AS prefix
    FROM unnest(CAST(:schemas AS text[])) AS wanted(name)
    JOIN pg_catalog.pg_namespace n ON n.nspname = wanted.name
),
members AS MATERIALIZED (
    SELECT t.nsp, m.classid, m.objid, m.xmin
    FROM tenants t
    CROSS JOIN LATERAL (
        SELECT d.classid, d.objid, d.xmin FROM pg_catalog.pg_depend d
        WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = t.nsp
            AND d.refobjsubid = 0 AND d.deptype = 'n'
        OFFSET 0
    ) m
),
-- Every object of the schema, bookkeeping tables included (they are named, and the
-- version table holds the memo); the shape leaves the bookkeeping tables out.
all_objects AS MATERIALIZED (
    SELECT m.nsp, o.*
    FROM members m
    CROSS JOIN LATERAL (
        SELECT c.oid, c.xmin, c.relname AS name, c.relkind, NULL::"char" AS typtype,
            c.reltuples
        FROM pg_catalog.pg_class c
        WHERE m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
            AND c.relnamespace = m.nsp
        UNION ALL
        SELECT ty.oid, ty.xmin, ty.typname, NULL, ty.typtype, NULL
        FROM pg_catalog.pg_type ty
        WHERE m.classid = 'pg_catalog.pg_type'::regclass AND ty.oid = m.objid
            AND ty.typnamespace = m.nsp
        UNION ALL
        SELECT p.oid, p.xmin, p.proname, NULL, NULL, NULL FROM pg_catalog.pg_proc p
        WHERE m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid
        OFFSET 0
    ) o
),
objects AS (
    SELECT * FROM all_objects
    WHERE relkind IS NULL OR name <> ALL(CAST(:ignored AS text[]))
),
rels AS (
    SELECT * FROM objects WHERE relkind IN ('r', 'p', 'v', 'm', 'f')
),
enums AS (
    SELECT * FROM objects WHERE typtype = 'e'
),
-- The memo: 'tenant_sync shape STAMP FINGERPRINT' on the version table (memo.py).
memos AS MATERIALIZED (
    SELECT o.nsp, split_part(d.description, ' ', 3) AS stamp,
        split_part(d.description, ' ', 4) AS fingerprint
    FROM all_objects o
    JOIN pg_catalog.pg_description d ON d.objoid = o.oid
        AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
    WHERE o.name = :version_table AND o.relkind = 'r'
        AND d.description LIKE 'tenant_sync shape % %'
        AND split_part(d.description, ' ', 4) <> ''
),
-- The stamps of the tenants with a memo, from their catalog rows alone, as stamp.sql
-- reads them (each relation's rows: relation_rows.sql, put in by catalog.py).
memo_rows AS (
    SELECT nsp, xmin FROM members WHERE nsp IN (SELECT nsp FROM memos)
    UNION ALL
    SELECT nsp, xmin FROM objects WHERE nsp IN (SELECT nsp FROM memos)
    UNION ALL
    SELECT r.nsp, x.xmin FROM rels r CROSS JOIN LATERAL (
{relation_rows}
    ) x
    WHERE r.nsp IN (SELECT nsp FROM memos)
    UNION ALL
    SELECT e.nsp, l.xmin FROM enums e CROSS JOIN LATERAL (
        SELECT l.xmin FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid OFFSET 0
    ) l
    WHERE e.nsp IN (SELECT nsp FROM memos)
),
known AS (
    SELECT m.nsp, m.fingerprint, m.stamp FROM memos m
    JOIN (
        SELECT nsp, count(*)::text || ':' || sum(hashtextextended(CAST(xmin AS text), 0)::numeric)::text AS stamp
        FROM memo_rows GROUP BY nsp
    ) s ON s.nsp = m.nsp AND s.stamp = m.stamp
),
-- Every other tenant is rendered: each item (the text of one relation, column,
-- constraint, index or enum type) carries its catalog rows' xmin, so that its stamp
-- comes from the same read as its text.
unknown_rels AS (
    SELECT r.*, t.prefix FROM rels r JOIN tenants t USING (nsp)
    WHERE r.nsp NOT IN (SELECT nsp FROM known)
),
items AS (
    SELECT r.nsp, 'R ' || r.relkind::text || ' ' || quote_ident(r.name)
        || coalesce(' -- ' || d.description, '') AS item,
        hashtextextended(CAST(r.xmin AS text), 0)::numeric + coalesce(hashtextextended(CAST(d.xmin AS text), 0)::numeric, 0) AS part,
        1 + CAST(d.xmin IS NOT NULL AS int) AS n
    FROM unknown_rels r
    LEFT JOIN LATERAL (
        SELECT d.description, d.xmin FROM pg_catalog.pg_description d
        WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
            AND d.objsubid = 0
        OFFSET 0
    ) d ON true
    UNION ALL
    SELECT r.nsp, 'C ' || quote_ident(r.name) || '.' || quote_ident(a.attname)
        || ' ' || a.attnum::text || ' '
        || CASE WHEN a.own_type THEN quote_ident(a.typname)
                WHEN a.atttypid < 16384 THEN a.atttypid::text
                ELSE CAST(CAST(a.atttypid AS regtype) AS text) END
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
    FROM unknown_rels r
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
    SELECT r.nsp, 'K ' || quote_ident(r.name) || ' ' || quote_ident(k.conname)
        || ' ' || k.contype::text || ' ' || coalesce(k.conkey::text, '')
        || ' ' || coalesce(k.confkey::text, '') || ' '
        || coalesce(CASE WHEN k.frelnamespace = r.nsp THEN quote_ident(k.frelname)
                         ELSE CAST(CAST(k.confrelid AS regclass) AS text) END, '')
        || ' ' || k.confupdtype::text || k.confdeltype::text || k.confmatchtype::text
        || ' ' || k.condeferrable::text || k.condeferred::text || k.convalidated::text
        || ' ' || coalesce(k.conexclop::text, '') || ' ' || coalesce(regexp_replace(CAST(k.conbin AS text), ' \:location -?[0-9]+', '', 'g'), ''),
        hashtextextended(CAST(k.k_xmin AS text), 0)::numeric, 1
    FROM unknown_rels r
    CROSS JOIN LATERAL (
        SELECT k.*, k.xmin AS k_xmin, f.relnamespace AS frelnamespace, f.relname AS frelname
        FROM pg_catalog.pg_constraint k
        LEFT JOIN pg_catalog.pg_class f ON f.oid = k.confrelid
        WHERE k.conrelid = r.oid
        OFFSET 0
    ) k
    UNION ALL
    SELECT r.nsp, 'I ' || quote_ident(i.relname) || ' ' || i.relam::text
        || ' ' || i.indisunique::text || i.indisprimary::text || i.indisvalid::text || ' ' || i.indnkeyatts::text
        || ' ' || i.indkey::text || ' ' || i.indclass::text || ' ' || i.indoption::text
        || ' ' || i.indcollation::text
        || coalesce(' ON ' || regexp_replace(CAST(i.indexprs AS text), ' \:location -?[0-9]+', '', 'g'), '')
        || coalesce(' WHERE ' || regexp_replace(CAST(i.indpred AS text), ' \:location -?[0-9]+', '', 'g'), ''),
        hashtextextended(CAST(i.i_xmin AS text), 0)::numeric + hashtextextended(CAST(i.ic_xmin AS text), 0)::numeric, 2
    FROM unknown_rels r
    CROSS JOIN LATERAL (
        SELECT i.*, i.xmin AS i_xmin, ic.xmin AS ic_xmin, ic.relname, ic.relam
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = r.oid
        OFFSET 0
    ) i
    UNION ALL
    SELECT e.nsp, 'T ' || quote_ident(e.name) || ' ' || l.labels,
        hashtextextended(CAST(e.xmin AS text), 0)::numeric + l.part, 1 + l.n
    FROM enums e
    CROSS JOIN LATERAL (
        SELECT string_agg(quote_literal(l.enumlabel), ',' ORDER BY l.enumsortorder) AS labels,
            coalesce(sum(hashtextextended(CAST(l.xmin AS text), 0)::numeric), 0) AS part, count(*) AS n
        FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid
    ) l
    WHERE e.nsp NOT IN (SELECT nsp FROM known)
    UNION ALL
    -- In the stamp only: the schema's membership (so that an object added after the
    -- pass changes it), and its objects that are neither relations nor enum types.
    SELECT nsp, NULL, hashtextextended(CAST(xmin AS text), 0)::numeric, 1 FROM members WHERE nsp NOT IN (SELECT nsp FROM known)
    UNION ALL
    SELECT nsp, NULL, hashtextextended(CAST(xmin AS text), 0)::numeric, 1 FROM objects
    WHERE nsp NOT IN (SELECT nsp FROM known)
        AND (relkind IS NULL OR relkind NOT IN ('r', 'p', 'v', 'm', 'f'))
        AND (typtype IS NULL OR typtype <> 'e')
),
fingerprints AS (
    SELECT nsp, md5(string_agg(item, E'\n' ORDER BY item COLLATE "C")) AS fingerprint,
        sum(n)::text || ':' || sum(part)::text AS stamp
    FROM items GROUP BY nsp
    UNION ALL
    SELECT nsp, fingerprint, stamp FROM known
),
relation_names AS (
    SELECT nsp,
        array_agg(name ORDER BY name)
            FILTER (WHERE name <> ALL(CAST(:ignored AS text[]))) AS relations,
        bool_or(name = :version_table) AS has_version_table,
        bool_or(name = :history_table) AS has_history_table,
        array_agg(name ORDER BY name) FILTER (WHERE relkind = 'r'
            AND CASE WHEN reltuples >= 0 THEN reltuples
                ELSE pg_catalog.pg_stat_get_live_tuples(oid) END >= CAST(:min_rows AS float8)
        ) AS big_tables
    FROM all_objects WHERE relkind IN ('r', 'p', 'v', 'm', 'f') GROUP BY nsp
),
enum_names AS (
    SELECT nsp, array_agg(name ORDER BY name) AS enum_types FROM enums GROUP BY nsp
)
SELECT t.nspname, f.fingerprint, rn.relations, en.enum_types, rn.has_version_table,
    f.stamp, rn.big_tables, rn.has_history_table
FROM tenants t
LEFT JOIN fingerprints f ON f.nsp = t.nsp
LEFT JOIN relation_names rn ON rn.nsp = t.nsp
LEFT JOIN enum_names en ON en.nsp = t.nsp
