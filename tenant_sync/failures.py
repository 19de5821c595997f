"""What tenant_sync knows about database errors: SQLSTATEs, retries, one-line messages.

Every SQLSTATE tenant_sync acts on is named here, with what it means for a tenant:
worth another attempt (:func:`transient_reason`), a tenant that changed since the
catalog pass (:data:`SHAPE_CHANGED`), a schema someone else created
(:data:`DUPLICATE_SCHEMA`).  :func:`failure_message` turns any error into the one line
a tenant's result shows.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

__all__ = [
    "DUPLICATE_SCHEMA",
    "SHAPE_CHANGED",
    "TRANSIENT_SQLSTATES",
    "OperationFailed",
    "TenantFailure",
    "failure_message",
    "sqlstate",
    "transient_reason",
]

#: Raised by the recheck (see :mod:`tenant_sync.fastpath.catalog`) when a tenant's
#: catalog is not as the pass saw it: a class of tenant_sync's own ("TS").
SHAPE_CHANGED = "TS001"

#: ``CREATE SCHEMA`` of a schema that exists.
DUPLICATE_SCHEMA = "42P06"

#: SQLSTATEs worth another attempt: the same work may well succeed a moment later.
TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock timeout",
    "57P01": "connection terminated by the server",
    "57P02": "connection terminated by the server",
    "57P03": "server not accepting connections",
    "08000": "connection lost",
    "08003": "connection lost",
    "08006": "connection lost",
}

_HINTS = {
    "55P03": " (lock_timeout reached: another session holds a lock on this tenant)",
    "57014": " (statement_timeout reached, or the statement was cancelled)",
    "23502": (
        " (a NOT NULL column or constraint meets existing NULLs: give the column a "
        "server_default, or fill the rows first)"
    ),
}

# A login the server refuses for good: psycopg gives no SQLSTATE for a failed
# connection, only the server's FATAL message, so it is recognised by its words.
_REFUSED_LOGIN = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|"
    r"(role|database) \"[^\"]*\" does not exist|"
    r"permission denied for database|not permitted to log in"
)


class OperationFailed(Exception):
    """One operation of a plan failed; wraps the database error with the operation's words."""

    def __init__(self, description: str, cause: BaseException) -> None:
        super().__init__(f"{description}: {cause}")
        self.description = description
        self.cause = cause
        #: The SQL the tenant ran before and including the failed statement, when known.
        self.statements: list[str] = []


def sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    """The SQLSTATE of a database error, or None (a lost connection has none)."""
    return getattr(exc.orig, "sqlstate", None)


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth another attempt, in words, or None if it is not."""
    if isinstance(exc, OperationFailed):
        exc = exc.cause
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    state = sqlstate(exc)
    if state in TRANSIENT_SQLSTATES:
        return TRANSIENT_SQLSTATES[state]
    if exc.orig is not None and _REFUSED_LOGIN.search(str(exc.orig)) is not None:
        return None
    if exc.connection_invalidated or (isinstance(exc, sa.exc.OperationalError) and state is None):
        return "connection lost"
    return None


class TenantFailure(Exception):
    """A tenant cannot be synced for a reason that is not a database error; its text is the error."""


def failure_message(exc: BaseException) -> str:
    """One line that says why a tenant failed, naming a timeout when there was one."""
    if isinstance(exc, TenantFailure):
        return " ".join(str(exc).split())
    prefix = ""
    description = ""
    if isinstance(exc, OperationFailed):
        description = exc.description
        prefix = f"while running '{description}': "
        exc = exc.cause
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        message = " ".join(str(exc.orig).split())
        hint = _hint(sqlstate(exc) or "", description)
        return f"{prefix}{type(exc.orig).__name__}: {message}{hint}"
    return f"{prefix}{type(exc).__name__}: {' '.join(str(exc).split())}"


def _hint(state: str, description: str) -> str:
    if (
        state == "23502"
        and description.startswith("add column ")
        and description.endswith(" NOT NULL")
    ):
        # The column is new, so there is nothing to fill: the rows are the problem.
        table = description.split()[2].split(".")[0]
        return (
            f" ({table} has rows, and a NOT NULL column needs a value in each: give the "
            "column a server_default, or add it nullable, fill it, then make it NOT NULL)"
        )
    return _HINTS.get(state, "")
