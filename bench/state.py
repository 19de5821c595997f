"""The benchmark's databases: templates of each tenant state, resets, drift, and checks.

Every measurement starts from a known state.  The states are kept as template
databases (``<db>_empty``, ``<db>_v1``, ``<db>_v2``) and the working database is
dropped and re-created from one (``CREATE DATABASE ... TEMPLATE``), which is faster
than undoing DDL tenant by tenant and leaves no trace (dropped columns, bloat) of
earlier runs.  None of this is timed.

A tenant's catalog is checked after each measurement with one query over all
tenants: a digest of its columns, constraints, indexes and enum types, which must
equal the digest of a reference schema built from the raw DDL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL

__all__ = [
    "DEFAULT_SERVER_URL",
    "Server",
    "catalog_digests",
    "conninfo",
    "tenant_names",
]

#: The server used when neither --database-url nor TENANT_SYNC_BENCH_URL says otherwise.
DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

#: Seconds to wait for others to leave a template database before copying it.
_TEMPLATE_WAIT_S = 300.0

#: Schemas created per transaction when making empty tenants.
_SCHEMA_BATCH = 500


def tenant_names(count: int) -> list[str]:
    """The benchmark's tenant schema names, in sorted order."""
    return [f"tenant_{i:05d}" for i in range(count)]


def conninfo(url: URL) -> str:
    """A libpq connection URI for a SQLAlchemy URL (for plain psycopg connections).

    Query parameters (``?host=/socket/dir``) pass through: libpq reads them too.
    """
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Server:
    """The PostgreSQL server: create, copy and drop the benchmark's databases."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self._admin = url.set(database=os.environ.get("TENANT_SYNC_BENCH_ADMIN_DB", "postgres"))

    def database(self, name: str) -> URL:
        """The URL of database ``name`` on this server."""
        return self.url.set(database=name)

    def _execute(self, statement: sql.Composed) -> None:
        with psycopg.connect(conninfo(self._admin), autocommit=True) as conn:
            conn.execute(statement)

    def create(self, name: str, template: str | None = None) -> None:
        """Create database ``name``, empty or as a copy of ``template``.

        A template someone is connected to cannot be copied: wait for them a while.
        """
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        deadline = time.monotonic() + _TEMPLATE_WAIT_S
        while True:
            try:
                self._execute(statement)
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def databases(self) -> set[str]:
        """The names of the server's databases."""
        with psycopg.connect(conninfo(self._admin), autocommit=True) as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}

    def drop(self, name: str) -> None:
        """Drop database ``name`` if it exists, ending its sessions."""
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def copy(self, template: str, name: str) -> None:
        """Replace database ``name`` with a fresh copy of ``template``."""
        self.drop(name)
        self.create(name, template)

    def checkpoint(self) -> bool:
        """Flush dirty buffers and start a fresh WAL budget; False without the privilege.

        Copying a template writes the whole database through WAL; without this, the
        checkpoint it causes would land in the next measurement.
        """
        try:
            self._execute(sql.SQL("CHECKPOINT").format())
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def server_info(self) -> dict[str, str]:
        """The server's version and the settings that matter for DDL speed."""
        names = [
            "server_version",
            "shared_buffers",
            "fsync",
            "synchronous_commit",
            "max_connections",
        ]
        with psycopg.connect(conninfo(self._admin), autocommit=True) as conn:
            info = {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in names}  # type: ignore[index]
            info["version"] = str(conn.execute("SELECT version()").fetchone()[0])  # type: ignore[index]
        return info


def run_per_tenant(url: URL, tenants: Sequence[str], statements: Sequence[str]) -> None:
    """Run ``statements`` in each tenant, one transaction per tenant (set-up, untimed)."""
    body = ";\n".join(statements)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for tenant in tenants:
            conn.execute(
                sql.SQL("BEGIN; SET LOCAL search_path TO {}; {}; COMMIT").format(
                    sql.Identifier(tenant),
                    sql.SQL(body),
                )
            )


def create_schemas(url: URL, tenants: Sequence[str]) -> None:
    """Create the empty tenant schemas, a batch per transaction."""
    with psycopg.connect(conninfo(url)) as conn:
        for start in range(0, len(tenants), _SCHEMA_BATCH):
            for tenant in tenants[start : start + _SCHEMA_BATCH]:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(tenant)))
            conn.commit()


# One row per tenant: an md5 over its model tables' columns, constraints and indexes,
# and its enum types.  Names are made schema-free so that every tenant can compare.
_FACTS = """
WITH tenant AS (
    SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%(tenants)s)
), rel AS (
    SELECT c.oid, c.relname, t.nspname FROM pg_catalog.pg_class c
    JOIN tenant t ON t.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%(tables)s)
), facts AS (
    SELECT r.nspname, format('col %%s.%%s %%s %%s %%s', r.relname, a.attname,
        replace(format_type(a.atttypid, a.atttypmod), quote_ident(r.nspname) || '.', ''),
        a.attnotnull,
        replace(pg_get_expr(d.adbin, d.adrelid), quote_ident(r.nspname) || '.', '')) AS fact
    FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT r.nspname, format('con %%s.%%s %%s', r.relname, k.conname,
        replace(pg_get_constraintdef(k.oid), quote_ident(r.nspname) || '.', ''))
    FROM rel r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid
    UNION ALL
    SELECT r.nspname, format('idx %%s', replace(pg_get_indexdef(i.indexrelid),
        quote_ident(r.nspname) || '.', ''))
    FROM rel r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT t.nspname, format('enum %%s %%s', y.typname,
        (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
         FROM pg_catalog.pg_enum e WHERE e.enumtypid = y.oid))
    FROM tenant t JOIN pg_catalog.pg_type y ON y.typnamespace = t.oid AND y.typtype = 'e'
)
"""
_DIGEST_QUERY = (
    _FACTS
    + """
SELECT t.nspname, md5(coalesce(string_agg(f.fact, E'\\n' ORDER BY f.fact), ''))
FROM tenant t LEFT JOIN facts f ON f.nspname = t.nspname
GROUP BY t.nspname
"""
)


def catalog_digests(url: URL, tenants: Iterable[str], tables: Iterable[str]) -> dict[str, str]:
    """Schema name -> digest of what the model owns in it (missing schemas are left out)."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(_DIGEST_QUERY, {"tenants": list(tenants), "tables": list(tables)})
        return {str(name): str(digest) for name, digest in rows}


def catalog_facts(url: URL, tenant: str, tables: Iterable[str]) -> set[str]:
    """What the digest of one tenant is made of, to see why two tenants differ."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            _FACTS + "SELECT fact FROM facts", {"tenants": [tenant], "tables": list(tables)}
        )
        return {str(fact) for (fact,) in rows}


def server_url(explicit: str | None) -> URL:
    """The URL given, else TENANT_SYNC_BENCH_URL, else the local default."""
    return sa.make_url(explicit or os.environ.get("TENANT_SYNC_BENCH_URL", DEFAULT_SERVER_URL))
