"""Bad input gets one clear error, fast, with no password in it."""

from __future__ import annotations

import socket
import time

import pytest
import sqlalchemy as sa
from models import model_v1
from sqlalchemy.engine import URL

from tenant_sync import ConfigurationError, DatabaseConnectionError, TenantSync


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_raises_naming_host_and_port_with_password_masked() -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://app:s3cret-pw@127.0.0.1:{port}/app"
    ts = TenantSync(url, model_v1())
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionError) as caught:
        ts.sync_all()
    assert time.monotonic() - started < 10, "fails within seconds"
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(ts)
    assert "\n" not in message
    ts.close()


def test_empty_metadata_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no tables"):
        TenantSync("postgresql+psycopg://localhost/x", sa.MetaData())


def test_metadata_with_only_shared_tables_is_refused() -> None:
    metadata = sa.MetaData()
    sa.Table("plans", metadata, sa.Column("id", sa.Integer, primary_key=True), schema="public")
    with pytest.raises(ConfigurationError, match="schema=None"):
        TenantSync("postgresql+psycopg://localhost/x", metadata)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "malformed database URL"),
        ("mysql://root@localhost/db", "needs PostgreSQL"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TenantSync(url, model_v1())


@pytest.mark.parametrize(
    ("option", "value"),
    [("workers", 0), ("lock_timeout", -1), ("retries", -1), ("statement_timeout", 0)],
)
def test_bad_options_are_refused(option: str, value: float, database_url: URL) -> None:
    with pytest.raises(ConfigurationError, match=option):
        TenantSync(database_url, model_v1(), **{option: value})
