-- One tenant's stamp: a digest of the versions (xmin) of every catalog row its shape
-- is read from, or NULL when the schema is gone or the role may not use and create in
-- it.  The same rows, counted the same way, as the stamps of shape_pass.sql: each
-- relation's rows are relation_rows.sql in both, and a test holds the two equal.
--
-- Parameters: $1 the schema, $2 the bookkeeping tables left out of the shape.  The
-- schema's objects are found through their dependency on it (pg_depend, indexed by the
-- object depended on), as in the pass.  Per-relation catalogs are read through
-- LATERAL ... OFFSET 0: with a plain IN (SELECT oid FROM rels) the planner, misled by
-- stale statistics, was seen to hash-join a sequential scan of all of pg_attrdef for
-- each tenant (12 ms at 1,000 tenants instead of 1, and growing with the database).
--
-- Besides the rows the fingerprint renders, the stamp covers the row of every other
-- object of the schema (sequences, functions, types): a default renders a sequence's
-- name, so renaming one changes the tenant's fingerprint and must change its stamp.
WITH tenant AS (
    SELECT oid AS nsp FROM pg_catalog.pg_namespace WHERE nspname = $1
        AND pg_catalog.has_schema_privilege(oid, 'USAGE')
        AND pg_catalog.has_schema_privilege(oid, 'CREATE')
),
members AS MATERIALIZED (
    SELECT d.classid, d.objid, d.xmin FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass
        AND d.refobjid = (SELECT nsp FROM tenant) AND d.refobjsubid = 0 AND d.deptype = 'n'
),
objects AS MATERIALIZED (
    SELECT o.oid, o.xmin, o.relkind, o.typtype, (SELECT nsp FROM tenant) AS nsp
    FROM members m CROSS JOIN LATERAL (
        SELECT c.oid, c.xmin, c.relkind, NULL::"char" AS typtype FROM pg_catalog.pg_class c
        WHERE m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
            AND c.relname <> ALL($2)
        UNION ALL
        SELECT ty.oid, ty.xmin, NULL, ty.typtype FROM pg_catalog.pg_type ty
        WHERE m.classid = 'pg_catalog.pg_type'::regclass AND ty.oid = m.objid
        UNION ALL
        SELECT p.oid, p.xmin, NULL, NULL FROM pg_catalog.pg_proc p
        WHERE m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid
        OFFSET 0
    ) o
),
catalog_rows AS (
    SELECT xmin FROM members
    UNION ALL
    SELECT xmin FROM objects
    UNION ALL
    SELECT x.xmin FROM objects r CROSS JOIN LATERAL (
{relation_rows}
    ) x
    WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT l.xmin FROM objects e CROSS JOIN LATERAL (
        SELECT l.xmin FROM pg_catalog.pg_enum l WHERE l.enumtypid = e.oid OFFSET 0
    ) l
    WHERE e.typtype = 'e'
)
SELECT CASE WHEN EXISTS (SELECT FROM tenant) THEN count(*)::text || ':'
    || coalesce(sum(hashtextextended(CAST(xmin AS text), 0)::numeric), 0)::text END
FROM catalog_rows
