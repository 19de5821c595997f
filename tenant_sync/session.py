"""Per-tenant session set-up: timeouts, search_path, the advisory lock, schema access.

All session state is set with ``set_config(..., is_local => true)`` (the function
form of ``SET LOCAL``), so it ends with the tenant's transaction and never leaks
to the next user of the connection, even through a transaction-mode pooler.
"""

from __future__ import annotations

import re
import zlib

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .sql import literal, quote

__all__ = [
    "LOCK_NAMESPACE",
    "SchemaAccessDenied",
    "check_schema_access",
    "lock_statement",
    "lock_tenant",
    "set_up_session",
]

#: First key of tenant_sync's two-key advisory locks; the second is the schema's hash.
LOCK_NAMESPACE = zlib.crc32(b"tenant_sync") & 0x7FFFFFFF


def set_up_session(
    conn: Connection, schema: str, lock_timeout: float, statement_timeout: float | None
) -> None:
    """Point the transaction at ``schema`` and bound every wait in it.

    ``search_path`` holds the tenant alone: unqualified names in the model resolve
    to the tenant and nothing else, and shared tables must be named with their schema.
    """
    conn.execute(sa.text(_SET_UP_SQL), _set_up_params(schema, lock_timeout, statement_timeout))


# jit is off because reflection's catalog queries look expensive to the planner at
# thousands of tenants, and compiling them took longer than running them (seen: 0.3 to
# 1.3 s per query at 10,000 tenants).
_SET_UP_SQL = (
    "SELECT set_config('search_path', :search_path, true),"
    " set_config('lock_timeout', :lock_timeout, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " set_config('jit', 'off', true)"
)


_LOCK_SQL = _SET_UP_SQL + ", pg_advisory_xact_lock(:namespace, hashtext(:schema))"


def _set_up_params(
    schema: str, lock_timeout: float, statement_timeout: float | None
) -> dict[str, str]:
    return {
        "search_path": quote(schema),
        "lock_timeout": _milliseconds(lock_timeout),
        "statement_timeout": _milliseconds(statement_timeout),
    }


class SchemaAccessDenied(Exception):
    """The role may not use the tenant schema (or, to change it, create in it)."""


def check_schema_access(conn: Connection, schema: str, write: bool) -> bool:
    """Tell whether ``schema`` exists; raise SchemaAccessDenied if the role lacks access.

    The error names the role, the owner and the GRANT or ALTER to run.

    Without USAGE, PostgreSQL silently leaves the schema out of search_path: the tenant
    would look empty (a plan to create every table) and the first CREATE would fail
    with "no schema has been selected to create in".  A schema that does not exist
    passes: it is created at signup, or reported missing.
    """
    row = conn.execute(
        sa.text(
            "SELECT current_user, pg_catalog.pg_get_userbyid(nspowner),"
            " pg_catalog.has_schema_privilege(oid, 'USAGE'),"
            " pg_catalog.has_schema_privilege(oid, 'CREATE')"
            " FROM pg_catalog.pg_namespace WHERE nspname = :schema"
        ),
        {"schema": schema},
    ).first()
    if row is None:
        return False
    user, owner, usage, create = row
    missing = [name for name, ok in (("USAGE", usage), ("CREATE", create or not write)) if not ok]
    if missing:
        name, role = quote(schema), quote(user)
        raise SchemaAccessDenied(
            f"permission denied for schema {schema!r}: role {user!r} lacks "
            f"{' and '.join(missing)} on it (its owner is {owner!r}); run "
            f"ALTER SCHEMA {name} OWNER TO {role}, or GRANT {', '.join(missing)} "
            f"ON SCHEMA {name} TO {role}"
        )
    return True


def lock_tenant(
    conn: Connection, schema: str, lock_timeout: float, statement_timeout: float | None
) -> None:
    """Set the session up as :func:`set_up_session` does, then take the tenant's lock.

    The transaction-level advisory lock means two runs (threads or processes) never work
    on the same tenant at once; commit or rollback releases it.  One round trip: the
    select list is evaluated in order, so ``lock_timeout`` bounds the wait for the lock.
    """
    conn.execute(
        sa.text(_LOCK_SQL),
        {
            **_set_up_params(schema, lock_timeout, statement_timeout),
            "namespace": LOCK_NAMESPACE,
            "schema": schema,
        },
    )


def lock_statement(schema: str, lock_timeout: float, statement_timeout: float | None) -> str:
    """The statement :func:`lock_tenant` runs, with its values written in as literals.

    For a batch of statements sent in one round trip, which can carry no parameters.
    """
    values = {
        **_set_up_params(schema, lock_timeout, statement_timeout),
        "namespace": str(LOCK_NAMESPACE),
        "schema": schema,
    }
    return re.sub(
        r":(\w+)",
        lambda match: values[match[1]] if match[1] == "namespace" else literal(values[match[1]]),
        _LOCK_SQL,
    )


def _milliseconds(seconds: float | None) -> str:
    return "0" if seconds is None else f"{max(1, round(seconds * 1000))}ms"
