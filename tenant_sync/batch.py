"""Several statements in one round trip, as SQLAlchemy would run them, errors included.

A batch carries no parameters (values are written in as literals), so psycopg sends
it with the simple query protocol, which runs every statement of the string in turn
and stops at the first error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .engine import unprepared

__all__ = ["execute_batch", "run_transaction"]


def execute_batch(conn: Connection, statements: Sequence[str]) -> None:
    """Run ``statements`` in ``conn``'s current transaction, in one round trip."""
    if statements:
        _execute(conn, ";\n".join(statements))


def run_transaction(engine: Engine, statements: Sequence[str]) -> None:
    """Run ``statements`` as one transaction, ``BEGIN`` to ``COMMIT``, in one round trip.

    On any error the transaction is rolled back (if the connection still stands)
    and the error raised as a SQLAlchemy ``DBAPIError``, like any other statement's.
    """
    with engine.connect() as conn, unprepared(conn):
        # Autocommit, so that the driver sends no BEGIN of its own; SQLAlchemy puts the
        # connection's isolation level back when it returns to the pool.
        conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            _execute(conn, ";\n".join(["BEGIN", *statements, "COMMIT"]))
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                _execute(conn, "ROLLBACK")
            raise


def _execute(conn: Connection, sql: str) -> None:
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
    except Exception as exc:
        # Present it as SQLAlchemy would, so error handling and retries treat it alike;
        # like SQLAlchemy, invalidate a lost connection, or the rollback that follows
        # fails on it ("the connection is lost") and hides why the tenant failed.
        dbapi = conn.dialect.loaded_dbapi
        lost = isinstance(exc, dbapi.Error) and conn.dialect.is_disconnect(exc, raw, cursor)
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            "<batch>", None, exc, dbapi.Error, connection_invalidated=lost
        ) from exc
    finally:
        cursor.close()
