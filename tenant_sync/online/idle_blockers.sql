-- A session that CREATE or DROP INDEX CONCURRENTLY on a table would wait for with no
-- end in sight: one idle in a transaction for longer than lock_timeout that holds a
-- lock on the table (the build waits for every such transaction to end) or a snapshot
-- (the build waits for every older one).  An active statement ends by itself; an idle
-- transaction, often a connection an application forgot, may not, and the build would
-- hang the run on it.  Sessions of other roles show without state unless the role may
-- read all statistics: then they are not seen, and the build waits as it would.
--
-- Bound parameters: schema, table (text) the table, older_than (float8) seconds.
SELECT a.pid, a.state, round(extract(epoch FROM now() - a.xact_start)::numeric, 1)
FROM pg_catalog.pg_stat_activity a
WHERE a.datname = pg_catalog.current_database()
    AND a.pid <> pg_catalog.pg_backend_pid()
    AND a.state LIKE 'idle in transaction%'
    AND a.xact_start < now() - make_interval(secs => CAST(:older_than AS float8))
    AND (a.backend_xmin IS NOT NULL OR EXISTS (
        SELECT FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_class t ON t.oid = l.relation
        JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
        WHERE l.pid = a.pid AND n.nspname = :schema AND t.relname = :table
    ))
ORDER BY a.xact_start
LIMIT 1
