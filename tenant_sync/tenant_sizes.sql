-- Each tenant's size in pages: its tables, materialized views and indexes (TOAST aside),
-- as pg_class estimates them (relpages, kept by VACUUM and ANALYZE): no table is read
-- and no lock taken.  One pass over pg_class for the run, which orders its waves by it.
--
-- Bound parameter: schemas (text[]) the tenant schemas.
SELECT n.nspname, coalesce(sum(c.relpages), 0)::bigint AS pages
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'i', 'p')
WHERE n.nspname = ANY(CAST(:schemas AS text[]))
GROUP BY n.nspname
