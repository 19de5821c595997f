-- The tables of each tenant big enough for the online path (see tenant_sync/online).
--
-- Bound parameters: schemas (text[]) the tenant schemas, min_rows (float8) the fewest
-- rows a table must hold.  Rows are as pg_class estimates them (reltuples, kept by
-- VACUUM, ANALYZE and CREATE INDEX), or as the statistics count the live ones, for a
-- table loaded since (reltuples is -1 until the first ANALYZE): no table is read and
-- no lock taken (pg_relation_size() would wait behind a lock on the table, and the
-- run with it).  Tables are reached through their dependency on the schema, as in the
-- catalog pass.
SELECT n.nspname, c.relname
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL (
    SELECT d.objid FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = n.oid
        AND d.refobjsubid = 0 AND d.deptype = 'n'
        AND d.classid = 'pg_catalog.pg_class'::regclass
    OFFSET 0
) m
JOIN pg_catalog.pg_class c ON c.oid = m.objid AND c.relkind = 'r'
WHERE n.nspname = ANY(CAST(:schemas AS text[]))
    AND CASE WHEN c.reltuples >= 0 THEN c.reltuples
        ELSE pg_catalog.pg_stat_get_live_tuples(c.oid) END >= CAST(:min_rows AS float8)
