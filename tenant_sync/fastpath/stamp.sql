-- One tenant's stamp: a digest of the versions (xmin) of every catalog row its shape
-- is read from, or NULL when the schema is gone or the role may not use and create in
-- it.  The same rows, counted the same way, as the stamps of shape_pass.sql (whose
-- relations' rows are relation_rows.sql): a test holds the two equal.
--
-- Parameters: $1 the schema, $2 the bookkeeping tables left out of the shape.  The
-- schema's objects are found through their dependency on it (pg_depend, indexed by the
-- object depended on), as in the pass.  Each catalog is then read once, by one index
-- scan over the array of the tenant's relations (= ANY): 490 buffer reads and ~20 %
-- less time at 20 tables than a LATERAL subquery per relation (744), which the pass
-- keeps because it reads every tenant at once (EXPLAIN at 1,000 tenants: one index
-- scan per catalog).  Not a plain IN (SELECT oid FROM rels): with that the planner,
-- misled by stale statistics, was seen to hash-join a sequential scan of all of
-- pg_attrdef for each tenant (12 ms at 1,000 tenants instead of 1).
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
classes AS MATERIALIZED (
    SELECT c.oid, c.xmin, c.relkind FROM pg_catalog.pg_class c
    WHERE c.oid = ANY (ARRAY(SELECT objid FROM members WHERE classid = 'pg_catalog.pg_class'::regclass))
        AND c.relname <> ALL($2)
),
types AS MATERIALIZED (
    SELECT ty.oid, ty.xmin, ty.typtype FROM pg_catalog.pg_type ty
    WHERE ty.oid = ANY (ARRAY(SELECT objid FROM members WHERE classid = 'pg_catalog.pg_type'::regclass))
),
rels AS MATERIALIZED (
    SELECT ARRAY(SELECT oid FROM classes WHERE relkind IN ('r', 'p', 'v', 'm', 'f')) AS oids
),
indexes AS MATERIALIZED (
    SELECT i.indexrelid, i.xmin FROM pg_catalog.pg_index i WHERE i.indrelid = ANY ((SELECT oids FROM rels)::oid[])
),
attributes AS MATERIALIZED (
    SELECT a.atttypid, a.xmin FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = ANY ((SELECT oids FROM rels)::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
),
catalog_rows AS (
    SELECT xmin FROM members
    UNION ALL SELECT xmin FROM classes
    UNION ALL SELECT xmin FROM types
    UNION ALL SELECT p.xmin FROM pg_catalog.pg_proc p
        WHERE p.oid = ANY (ARRAY(SELECT objid FROM members WHERE classid = 'pg_catalog.pg_proc'::regclass))
    UNION ALL SELECT d.xmin FROM pg_catalog.pg_description d
        WHERE d.objoid = ANY ((SELECT oids FROM rels)::oid[]) AND d.classoid = 'pg_catalog.pg_class'::regclass
    UNION ALL SELECT xmin FROM attributes
    UNION ALL SELECT ty.xmin FROM attributes a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
        WHERE a.atttypid >= 16384 AND ty.typnamespace = (SELECT nsp FROM tenant)
    UNION ALL SELECT ad.xmin FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = ANY ((SELECT oids FROM rels)::oid[])
    UNION ALL SELECT k.xmin FROM pg_catalog.pg_constraint k WHERE k.conrelid = ANY ((SELECT oids FROM rels)::oid[])
    UNION ALL SELECT xmin FROM indexes
    UNION ALL SELECT ic.xmin FROM pg_catalog.pg_class ic WHERE ic.oid = ANY (ARRAY(SELECT indexrelid FROM indexes))
    UNION ALL SELECT l.xmin FROM pg_catalog.pg_enum l
        WHERE l.enumtypid = ANY (ARRAY(SELECT oid FROM types WHERE typtype = 'e'))
)
SELECT CASE WHEN EXISTS (SELECT FROM tenant) THEN count(*)::text || ':'
    || coalesce(sum(hashtextextended(CAST(xmin AS text), 0)::numeric), 0)::text END
FROM catalog_rows
