-- The catalog rows of one relation r (its oid r.oid, its schema r.nsp) that a stamp
-- covers, as a LATERAL subquery's body, for the stamps of shape_pass.sql (catalog.py
-- puts it in).  stamp.sql reads the same rows of all a tenant's relations at once; a
-- test holds the two stamps equal.
SELECT d.xmin FROM pg_catalog.pg_description d
WHERE d.objoid = r.oid AND d.classoid = 'pg_catalog.pg_class'::regclass
UNION ALL
SELECT a.xmin FROM pg_catalog.pg_attribute a
WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT ty.xmin FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    AND a.atttypid >= 16384 AND ty.typnamespace = r.nsp
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
