"""Accept an Engine or a URL, size the pool, and translate connection failures.

This is the one boundary where driver errors about reaching the server become
:class:`~tenant_sync.errors.DatabaseConnectionError`, with the password masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import QueuePool

from .errors import ConfigurationError, DatabaseConnectionError

__all__ = [
    "connect",
    "make_engine",
    "mask_password",
    "masked_url",
    "server_key",
    "unprepared",
    "usable_workers",
]

log = logging.getLogger(__name__)

#: Seconds to wait for the server to answer a new connection.
CONNECT_TIMEOUT_S = 5


def make_engine(engine_or_url: Engine | URL | str, workers: int) -> tuple[Engine, bool]:
    """Return ``(engine, owned)``: the caller's Engine as is, or a new one built from a URL.

    A new engine gets a pool of ``workers`` connections (plus one for discovery)
    and a connect timeout, so an unreachable server fails in seconds.  ``owned``
    tells whether tenant_sync must dispose of it.
    """
    if isinstance(engine_or_url, Engine):
        _check_postgresql(engine_or_url.url)
        return engine_or_url, False
    url = _parse_url(engine_or_url)
    _check_postgresql(url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, object] = {}
    if url.drivername == "postgresql+psycopg":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        # Server-side prepared statements break behind a transaction-mode pooler
        # (pgbouncer before 1.21): the next transaction may land on another server.
        connect_args["prepare_threshold"] = None
    try:
        engine = sa.create_engine(
            url,
            pool_size=workers + 1,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigurationError(f"invalid database URL {masked_url(url)}: {exc}") from exc
    return engine, True


#: What a password is replaced with, in URLs and messages.
MASK = "***"


def usable_workers(engine: Engine, owned: bool, workers: int) -> int:
    """``workers``, capped by what a caller's engine pool can give at once (with a warning)."""
    pool = engine.pool
    if owned or not isinstance(pool, QueuePool):
        return workers
    overflow = pool._max_overflow  # no public accessor; -1 means unlimited
    capacity = pool.size() + overflow if overflow >= 0 else workers
    if capacity < workers:
        log.warning(
            "engine pool holds %d connections; running %d workers instead of %d",
            capacity,
            capacity,
            workers,
        )
    return max(1, min(workers, capacity))


def masked_url(url: URL | str) -> str:
    """Render a URL for messages, logs and reports, with the password masked.

    Both the password of ``user:password@`` and a ``?password=`` query parameter
    (psycopg takes either) are replaced by ``***``; an unparseable URL is not shown.
    """
    if isinstance(url, str):
        try:
            url = sa.make_url(url)
        except (ArgumentError, ValueError):
            return "<unparseable URL>"
    if "password" not in url.query:
        return url.render_as_string(hide_password=True)
    text = url.update_query_dict({"password": "MASKED"}).render_as_string(hide_password=True)
    return text.replace("password=MASKED", f"password={MASK}")


def server_key(url: URL) -> str:
    """What names a server among a run's databases: its URL less the database's name."""
    return url.set(database="").render_as_string()


def mask_password(text: str, url: URL | str | None) -> str:
    """``text`` with the password of ``url`` replaced by ``***``, wherever it appears.

    For messages that may quote a driver's error or the URL itself.  When ``url``
    cannot be parsed, its password cannot be found: the whole URL is masked instead.
    """
    if not url:
        return text
    try:
        parsed = url if isinstance(url, URL) else sa.make_url(url)
    except (ArgumentError, ValueError):
        return text.replace(str(url), "<database URL>")
    for password in (parsed.password, parsed.query.get("password")):
        if password and isinstance(password, str):
            text = text.replace(password, MASK)
    return text


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """Open a connection, raising DatabaseConnectionError if the server can't be had."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise DatabaseConnectionError(_connection_message(engine.url, exc)) from None
    with conn, unprepared(conn):
        yield conn


@contextmanager
def unprepared(conn: Connection) -> Iterator[Connection]:
    """Keep psycopg from preparing statements server-side while tenant_sync uses ``conn``.

    A caller's Engine may keep psycopg's default ``prepare_threshold`` (5): tenant_sync
    repeats the same statements for every tenant, so psycopg would prepare them, and
    behind a transaction-mode pooler (pgbouncer before 1.21) the next transaction finds
    them missing, or their name taken, on another server session.  The threshold is
    set on this one connection and restored afterwards; the caller's engine is not changed.
    """
    raw = conn.connection.dbapi_connection
    if raw is None or not hasattr(raw, "prepare_threshold"):
        yield conn  # not psycopg 3
        return
    saved = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield conn
    finally:
        raw.prepare_threshold = saved


def _parse_url(value: URL | str) -> URL:
    if isinstance(value, URL):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"expected a SQLAlchemy Engine or a database URL, got {type(value).__name__}"
        )
    try:
        return sa.make_url(value)
    except (ArgumentError, ValueError):
        # SQLAlchemy raises a bare ValueError for a port that is not a number
        # ("host:abc") or an unclosed IPv6 bracket; both are malformed URLs.
        raise ConfigurationError(
            "malformed database URL (expected postgresql+psycopg://user:password@host:port/dbname)"
        ) from None


def _check_postgresql(url: URL) -> None:
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"tenant_sync needs PostgreSQL, got a {url.get_backend_name()!r} URL: {masked_url(url)}"
        )


def _connection_message(url: URL, exc: DBAPIError) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    reason = mask_password(reason, url)
    host = url.host or "local socket"
    port = url.port or 5432
    return (
        f"cannot connect to PostgreSQL at {host}:{port} database {url.database!r} "
        f"as {url.username!r}: {reason}"
    )
