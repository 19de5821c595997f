-- One tenant's stamp, over the same catalog rows as its items in shape_pass.sql, or
-- NULL when the schema is gone or the role may not use and create in it.
--
-- Parameters: $1 the schema, $2 its relations, $3 its enum types, as the pass saw them;
-- they are looked up by name, so every lookup is on a catalog index.  As in the pass,
-- per-relation catalogs are read through LATERAL ... OFFSET 0: with a plain
-- IN (SELECT oid FROM rels) the planner, misled by stale statistics, was seen to
-- hash-join a sequential scan of all of pg_attrdef for each tenant (12 ms at 1,000
-- tenants instead of 1, and growing with the database).
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
