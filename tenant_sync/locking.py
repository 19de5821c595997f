"""Per-tenant session set-up: timeouts, search_path, the advisory lock, quoting.

All session state is set with ``set_config(..., is_local => true)`` (the function
form of ``SET LOCAL``), so it ends with the tenant's transaction and never leaks
to the next user of the connection, even through a transaction-mode pooler.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

__all__ = ["LOCK_NAMESPACE", "lock_tenant", "quote", "set_up_session"]

#: First key of tenant_sync's two-key advisory locks; the second is the schema's hash.
LOCK_NAMESPACE = zlib.crc32(b"tenant_sync") & 0x7FFFFFFF


def quote(dialect: Dialect, name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, always, whatever it contains."""
    return dialect.identifier_preparer.quote_identifier(name)


def set_up_session(
    conn: Connection, schema: str, lock_timeout: float, statement_timeout: float | None
) -> None:
    """Point the transaction at ``schema`` and bound every wait in it.

    ``search_path`` holds the tenant alone: unqualified names in the model resolve
    to the tenant and nothing else, and shared tables must be named with their schema.
    """
    conn.execute(
        sa.text(
            "SELECT set_config('search_path', :search_path, true),"
            " set_config('lock_timeout', :lock_timeout, true),"
            " set_config('statement_timeout', :statement_timeout, true)"
        ),
        {
            "search_path": quote(conn.dialect, schema),
            "lock_timeout": _milliseconds(lock_timeout),
            "statement_timeout": _milliseconds(statement_timeout),
        },
    )


def lock_tenant(conn: Connection, schema: str) -> None:
    """Take the tenant's transaction-level advisory lock, waiting at most ``lock_timeout``.

    Two runs (threads or processes) never work on the same tenant at once; the
    lock is released by the tenant's commit or rollback.
    """
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:schema))"),
        {"namespace": LOCK_NAMESPACE, "schema": schema},
    )


def _milliseconds(seconds: float | None) -> str:
    return "0" if seconds is None else f"{max(1, round(seconds * 1000))}ms"
