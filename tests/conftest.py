"""Fixtures: a real PostgreSQL server, and a fresh database for each test.

The server is found at TENANT_SYNC_TEST_DATABASE_URL, by default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (the account must be able to
create databases).  When that variable is unset and nothing answers on
127.0.0.1:5432, the tests start the embedded server of ``tenant_sync[embedded]`` for
the session, so they run on a machine that has only Python.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tenant_sync.demo.embedded import EmbeddedPostgres, embedded_available, server_answers

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_embedded: EmbeddedPostgres | None = None


def server_url() -> URL:
    """The URL of the test server's maintenance database."""
    if _embedded is not None:
        return sa.make_url(_embedded.url)
    return sa.make_url(os.environ.get("TENANT_SYNC_TEST_DATABASE_URL", DEFAULT_URL))


def pytest_configure(config: pytest.Config) -> None:
    """Start the embedded server when no test server is configured or answering."""
    global _embedded
    if "TENANT_SYNC_TEST_DATABASE_URL" in os.environ or server_answers("127.0.0.1", 5432):
        return
    if not embedded_available():
        return  # admin_engine then stops the run with a clear message
    _embedded = EmbeddedPostgres()
    _embedded.start()
    # Subprocesses started by tests (CLI, faults) find the same server.
    os.environ["TENANT_SYNC_TEST_DATABASE_URL"] = _embedded.url


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the embedded server, if one was started."""
    if _embedded is not None:
        _embedded.stop()


@pytest.fixture(scope="session")
def admin_engine() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the maintenance database, to create and drop databases."""
    engine = sa.create_engine(server_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.exit(
            f"no PostgreSQL for the tests at {server_url()!r}: {exc.orig}. Start one, set "
            "TENANT_SYNC_TEST_DATABASE_URL, or install tenant_sync[embedded]",
            returncode=3,
        )
    yield engine
    engine.dispose()


def create_database(admin_engine: Engine, label: str) -> URL:
    """Create an empty database named after ``label`` and return its URL."""
    name = "ts_" + re.sub(r"[^a-z0-9]+", "_", label.lower())[-40:] + "_" + uuid.uuid4().hex[:8]
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return server_url().set(database=name)


def drop_database(admin_engine: Engine, url: URL) -> None:
    """Drop a database made by :func:`create_database`, ending its sessions."""
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


@pytest.fixture
def database_url(admin_engine: Engine, request: pytest.FixtureRequest) -> Iterator[URL]:
    """A fresh, empty database for one test, with the shared ``public.plans`` table."""
    url = create_database(admin_engine, request.node.name)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY, name text NOT NULL)")
        )
        conn.execute(sa.text("INSERT INTO public.plans (name) VALUES ('free'), ('pro')"))
    engine.dispose()
    yield url
    drop_database(admin_engine, url)


@pytest.fixture
def engine(database_url: URL) -> Iterator[Engine]:
    """A plain engine on the test's database, for set-up and for reading the catalog."""
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()
