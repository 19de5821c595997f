"""Bad input gets one clear error and leaves the database as it was; passwords never show.

Issue 3, points 9 and 10.  Each bad input is tried against a database whose tenants
are at model v1 while the model given is v2, so a sync that went ahead by mistake
would change the catalog; :func:`helpers.catalog_snapshot` shows that none did.

The password tests need a role the server asks a password of.  When the server
trusts local TCP logins (a developer's cluster, CI), the fixture puts one
``scram-sha-256`` line for that role alone at the top of ``pg_hba.conf``, reloads,
and takes the line out again at teardown; other roles are not affected.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database, server_url
from helpers import catalog_snapshot, make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import (
    ConfigurationError,
    DatabaseConnectionError,
    DiscoveryError,
    TenantSync,
    TenantSyncError,
    add_shared_log_file,
)

TENANTS = ["tenant_a", "tenant_b"]


@pytest.fixture(scope="module")
def shared_db(admin_engine: Engine) -> Iterator[tuple[URL, Engine]]:
    """One database for the module's bad-input tests, none of which may change it.

    It has the shared ``public.plans`` and two tenants built at model v1, while the
    tests pass model v2: a sync that went ahead by mistake would change the catalog.
    """
    url = create_database(admin_engine, "bad_input")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY, name text)"))
        make_schemas(engine, TENANTS)
        with TenantSync(url, model_v1()) as ts:
            assert ts.sync_all().counts["migrated"] == len(TENANTS)
        yield url, engine
    finally:
        engine.dispose()
        drop_database(admin_engine, url)


@pytest.fixture
def shared_url(shared_db: tuple[URL, Engine]) -> URL:
    return shared_db[0]


@pytest.fixture
def shared_engine(shared_db: tuple[URL, Engine]) -> Engine:
    return shared_db[1]


def assert_one_clear_error(error: BaseException, *fragments: str) -> str:
    """The error is tenant_sync's own, one short line, and names what is wrong."""
    assert isinstance(error, TenantSyncError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message and len(message) < 400, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _no_such_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- 9. malformed URL, unknown database, wrong password -------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "",
        "postgresql+psycopg://app:pw@127.0.0.1:notaport/app",
        "postgresql+psycopg://app:pw@[::1/app",
    ],
    ids=["words", "empty", "port-not-a-number", "unclosed-ipv6-bracket"],
)
def test_malformed_url_is_one_configuration_error(
    url: str,
    shared_engine: Engine,
) -> None:
    before = catalog_snapshot(shared_engine)
    with pytest.raises(TenantSyncError) as caught:
        TenantSync(url, model_v2())
    assert isinstance(caught.value, ConfigurationError)
    message = assert_one_clear_error(caught.value, "malformed database URL")
    assert "pw" not in message.replace("password", "")
    assert catalog_snapshot(shared_engine) == before


def test_database_that_does_not_exist_is_one_connection_error(
    admin_engine: Engine,
    shared_engine: Engine,
) -> None:
    missing = f"ts_missing_{uuid.uuid4().hex[:8]}"
    before = catalog_snapshot(shared_engine)
    with TenantSync(server_url().set(database=missing), model_v2()) as ts:
        for attempt in (ts.sync_all, ts.list_tenants, lambda: ts.sync_all(dry_run=True)):
            with pytest.raises(DatabaseConnectionError) as caught:
                attempt()
            assert_one_clear_error(
                caught.value, f"database {missing!r}", f'database "{missing}" does not exist'
            )
    with admin_engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": missing}
        ).first()
    assert found is None, "the database was not created"
    assert catalog_snapshot(shared_engine) == before


# -- 9. the model -----------------------------------------------------------------------


def test_empty_metadata_is_one_configuration_error(
    shared_url: URL,
    shared_engine: Engine,
) -> None:
    before = catalog_snapshot(shared_engine)
    with pytest.raises(ConfigurationError) as caught:
        TenantSync(shared_url, sa.MetaData())
    assert_one_clear_error(caught.value, "no tables")
    assert catalog_snapshot(shared_engine) == before


def _model_naming(schema: str) -> sa.MetaData:
    metadata = model_v2()
    sa.Table("audit", metadata, sa.Column("id", sa.Integer, primary_key=True), schema=schema)
    return metadata


@pytest.mark.parametrize(
    "tenants", ["tenant_%", ["tenant_a", "tenant_b"], lambda conn: ["tenant_b", "tenant_a"]]
)
def test_metadata_naming_a_tenant_schema_explicitly_is_one_configuration_error(
    shared_url: URL, shared_engine: Engine, tenants: object
) -> None:
    before = catalog_snapshot(shared_engine)
    with TenantSync(shared_url, _model_naming("tenant_b"), tenants=tenants) as ts:  # type: ignore[arg-type]
        for attempt in (ts.sync_all, lambda: ts.sync_all(dry_run=True)):
            with pytest.raises(ConfigurationError) as caught:
                attempt()
            assert_one_clear_error(
                caught.value, "names tenant schema 'tenant_b' explicitly", "schema=None"
            )
        with pytest.raises(ConfigurationError) as caught:
            ts.sync_tenant("tenant_b")
        assert_one_clear_error(caught.value, "'tenant_b'", "schema=None")
    assert catalog_snapshot(shared_engine) == before


# -- 9. the tenant list -----------------------------------------------------------------


def test_pattern_matching_no_tenant_is_reported_not_raised(
    shared_url: URL, shared_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tenant_sync")
    before = catalog_snapshot(shared_engine)
    with TenantSync(shared_url, model_v2(), tenants="nobody_%") as ts:
        report = ts.sync_all()
    assert report.ok and report.results == []
    assert report.note == "no tenant schema matched 'nobody_%'"
    assert json.loads(report.to_json())["note"] == report.note
    assert "no tenants to sync" in caplog.text and "nobody_%" in caplog.text
    assert "0 tenants" in report.summary()
    assert catalog_snapshot(shared_engine) == before


@pytest.mark.parametrize(
    ("tenants", "fragments"),
    [
        (["tenant_a", "tenant_b", "tenant_a"], ["duplicate tenant names: 'tenant_a'"]),
        (["tenant_b", "tenant_b", "tenant_a", "tenant_a"], ["'tenant_b', 'tenant_a'"]),
        (lambda conn: ["tenant_a", "tenant_a"], ["duplicate tenant names: 'tenant_a'"]),
    ],
    ids=["list", "two-duplicates", "callable"],
)
def test_duplicate_tenant_names_are_one_configuration_error(
    shared_url: URL,
    shared_engine: Engine,
    tenants: object,
    fragments: list[str],
) -> None:
    before = catalog_snapshot(shared_engine)
    with TenantSync(shared_url, model_v2(), tenants=tenants) as ts:  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError) as caught:
            ts.sync_all()
        assert_one_clear_error(caught.value, *fragments)
    assert catalog_snapshot(shared_engine) == before


@pytest.mark.parametrize(
    ("name", "size"),
    [("t" * 64, 64), ("é" * 32, 64), ("tenant_" + "x" * 200, 207)],
    ids=["ascii-64", "two-byte-chars-32", "long"],
)
def test_name_longer_than_63_bytes_is_one_configuration_error_and_nothing_is_created(
    shared_url: URL, shared_engine: Engine, name: str, size: int
) -> None:
    before = catalog_snapshot(shared_engine)
    with TenantSync(shared_url, model_v2(), tenants=["tenant_a", name]) as ts:
        with pytest.raises(ConfigurationError) as caught:
            ts.sync_all()
        assert_one_clear_error(caught.value, f"is {size} bytes; PostgreSQL allows at most 63")
        # Signup too: PostgreSQL would silently truncate the name and create that schema.
        with pytest.raises(ConfigurationError) as caught:
            ts.sync_tenant(name)
        assert_one_clear_error(caught.value, f"is {size} bytes")
    assert catalog_snapshot(shared_engine) == before


def test_tenants_callable_that_raises_is_one_discovery_error(
    shared_url: URL,
    shared_engine: Engine,
) -> None:
    def registry_down(conn: sa.Connection) -> list[str]:
        raise ConnectionRefusedError("tenant registry at 10.0.0.9 refused the connection")

    before = catalog_snapshot(shared_engine)
    with TenantSync(shared_url, model_v2(), tenants=registry_down) as ts:
        for attempt in (ts.sync_all, ts.list_tenants):
            with pytest.raises(DiscoveryError) as caught:
                attempt()
            assert_one_clear_error(
                caught.value,
                "registry_down",
                "ConnectionRefusedError",
                "tenant registry at 10.0.0.9 refused the connection",
            )
            assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    assert catalog_snapshot(shared_engine) == before


# -- 9 and 10. a role that logs in with a password --------------------------------------

_HBA_MARK = "# tenant_sync test role, removed at teardown"


def _login_fails(url: URL) -> bool:
    """Whether the server refuses ``url``'s login, asked exactly where ``url`` points
    (its host, or the Unix socket named in its query, as the embedded server's is)."""
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with probe.connect():
            return False
    except sa.exc.OperationalError:
        return True
    finally:
        probe.dispose()


@contextmanager
def _password_required(admin_engine: Engine, role: str, probe: URL) -> Iterator[None]:
    """Make the server ask ``role`` for its password over local TCP, if it does not already."""
    if _login_fails(probe):
        yield  # the server already checks passwords for this role (e.g. Docker's image)
        return
    with admin_engine.connect() as conn:
        hba_file = Path(conn.execute(sa.text("SHOW hba_file")).scalar_one())
    if not (hba_file.is_file() and os.access(hba_file, os.W_OK)):
        pytest.skip(
            f"the server trusts logins on 127.0.0.1 and {hba_file} is not writable here, "
            "so a wrong password cannot be tested"
        )
    # TCP and the Unix socket: the embedded server listens on a socket only.
    lines = f"local all {role} scram-sha-256 {_HBA_MARK} ({role})\n" + "".join(
        f"host all {role} {address} scram-sha-256 {_HBA_MARK} ({role})\n"
        for address in ("127.0.0.1/32", "::1/128")
    )
    hba_file.write_text(lines + hba_file.read_text())
    try:
        _reload(admin_engine)
        _await(lambda: _login_fails(probe), "the server to ask for a password")
        yield
    finally:
        # Remove our line only, in case someone else edited the file meanwhile.
        kept = [text for text in hba_file.read_text().splitlines(True) if f"({role})" not in text]
        hba_file.write_text("".join(kept))
        _reload(admin_engine)


def _reload(admin_engine: Engine) -> None:
    with admin_engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_reload_conf()"))
        errors = conn.execute(
            sa.text("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL")
        ).all()
    assert errors == [], f"pg_hba.conf has errors: {errors}"


def _await(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


# Characters that URL encoding changes, so both spellings must stay hidden.
PASSWORD = "S3cret/p@ss:" + uuid.uuid4().hex[:12] + "%x"


@pytest.fixture
def password_url(admin_engine: Engine, database_url: URL, engine: Engine) -> Iterator[URL]:
    """The test database's URL for a new non-superuser role with a password the server checks.

    The role owns the two tenant schemas (built at v1) and may create schemas.
    """
    role = f"ts_pw_{uuid.uuid4().hex[:8]}"
    url = database_url.set(username=role, password=PASSWORD)
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'GRANT CREATE ON DATABASE "{database_url.database}" TO {role}'))
            conn.execute(sa.text(f"GRANT SELECT, REFERENCES ON public.plans TO {role}"))
            for name in TENANTS:
                conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {role}"))
        with TenantSync(url, model_v1()) as ts:
            assert ts.sync_all().counts["migrated"] == len(TENANTS)
        with _password_required(admin_engine, role, url.set(password="not-" + PASSWORD)):
            yield url
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role} CASCADE"))
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))


def _spellings(password: str) -> list[str]:
    return [password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)]


def assert_no_password(text: str, where: str) -> None:
    for spelling in _spellings(PASSWORD):
        assert spelling not in text, f"the password shows in {where}: {text[:500]!r}"
    assert PASSWORD.split("/")[0] not in text, f"part of the password shows in {where}"


def test_wrong_password_is_one_connection_error_and_nothing_changes(
    password_url: URL, engine: Engine
) -> None:
    wrong = password_url.set(password="Wrong/" + PASSWORD[::-1])
    before = catalog_snapshot(engine)
    with TenantSync(wrong, model_v2()) as ts:
        for attempt in (ts.sync_all, ts.list_tenants):
            with pytest.raises(DatabaseConnectionError) as caught:
                attempt()
            message = assert_one_clear_error(
                caught.value,
                f"as {password_url.username!r}",
                "password authentication failed",
                f"database {password_url.database!r}",
            )
            for spelling in [*_spellings(PASSWORD), *_spellings(wrong.password or "")]:
                assert spelling not in message
    assert catalog_snapshot(engine) == before


def test_signup_with_a_wrong_password_fails_at_once_without_retrying(
    password_url: URL, engine: Engine
) -> None:
    wrong = password_url.set(password="Wrong/" + PASSWORD[::-1])
    before = catalog_snapshot(engine)
    with TenantSync(wrong, model_v2()) as ts:
        result = ts.sync_tenant("tenant_new")
    assert result.status == "failed"
    assert result.error is not None and "password authentication failed" in result.error
    assert catalog_snapshot(engine) == before
    assert result.attempts == 1, "a refused login is not transient: no retry"


def test_password_never_shows_in_logs_reports_or_errors(
    password_url: URL, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything at DEBUG, SQLAlchemy's and Alembic's loggers included.
    caplog.set_level(logging.DEBUG)
    package_logger = logging.getLogger("tenant_sync")
    level = package_logger.level
    log_file = tmp_path / "shared.log"
    handler = add_shared_log_file(log_file, level=logging.DEBUG)
    texts: dict[str, str] = {}
    try:
        url_text = password_url.render_as_string(hide_password=False)
        statuses = []
        for spelling in (url_text, password_url):
            with TenantSync(spelling, model_v2(), tenants=[*TENANTS, "ghost"]) as ts:
                texts[f"repr {type(spelling).__name__}"] = repr(ts) + str(ts.engine.url)
                texts["dry run report"] = ts.sync_all(dry_run=True).to_json()
                report = ts.sync_all()
                statuses.append((report.get("tenant_a").status, report.get("ghost").status))  # type: ignore[union-attr]
                texts[f"report {len(statuses)}"] = report.to_json()
                texts["signup"] = json.dumps(ts.sync_tenant("tenant_new").to_dict())
        assert statuses == [("migrated", "failed"), ("unchanged", "failed")]

        wrong = password_url.set(password="Wrong/" + PASSWORD[::-1])
        port = _no_such_port()
        unreachable = password_url.set(host="127.0.0.1", port=port).difference_update_query(
            ["host", "port"]
        )
        for label, url in (("wrong password", wrong), ("unreachable", unreachable)):
            with TenantSync(url, model_v2()) as ts:
                texts[f"repr {label}"] = repr(ts)
                with pytest.raises(DatabaseConnectionError) as caught:
                    ts.sync_all()
                texts[f"error {label}"] = "".join(traceback.format_exception(caught.value))
                result = ts.sync_tenant("tenant_x")
                assert result.status == "failed"
                texts[f"failed signup {label}"] = json.dumps(result.to_dict())
        # An unreachable server given as text, password and all.
        with (
            TenantSync(unreachable.render_as_string(hide_password=False), model_v2()) as ts,
            pytest.raises(DatabaseConnectionError) as caught,
        ):
            ts.sync_all()
        texts["error from URL text"] = str(caught.value) + repr(caught.value)
    finally:
        package_logger.removeHandler(handler)
        handler.close()
        package_logger.setLevel(level)

    texts["captured log"] = "\n".join(
        record.getMessage() + repr(record.args) for record in caplog.records
    )
    texts["shared log file"] = log_file.read_text(encoding="utf-8")
    assert re.search(r"tenant tenant_a: migrated", texts["shared log file"])
    assert "password authentication failed" in texts["error wrong password"]
    for where, text in texts.items():
        assert_no_password(text, where)
