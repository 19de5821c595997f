-- The relations (tables, views, materialized views, foreign tables) of each named
-- schema, by name: what the not-a-tenant rule looks at (see selection.py) when the
-- catalog pass has not read a schema (verify=True, tenant-sync list).
--
-- Bound parameters: schemas (text[]) the schemas, ignored (text[]) the bookkeeping
-- tables left out (as the catalog pass leaves them out of a shape's relations).
-- Schemas that do not exist have no row; a schema without relations has a NULL array.
-- As in fastpath/shape_pass.sql, relations are found through their dependency on the
-- schema, on the indexes of pg_depend, and looked up in pg_class by oid: one query,
-- linear in the number of schemas, however many the database holds.
SELECT n.nspname, r.relations
FROM unnest(CAST(:schemas AS text[])) AS wanted(name)
JOIN pg_catalog.pg_namespace n ON n.nspname = wanted.name
CROSS JOIN LATERAL (
    SELECT array_agg(c.relname ORDER BY c.relname) AS relations
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relnamespace = n.oid
    WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = n.oid
        AND d.refobjsubid = 0 AND d.deptype = 'n'
        AND d.classid = 'pg_catalog.pg_class'::regclass
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND c.relname <> ALL(CAST(:ignored AS text[]))
) r
