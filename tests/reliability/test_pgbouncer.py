"""tenant_sync behind pgbouncer in transaction pooling mode.

Issue 3, point 6.  Each test starts its own pgbouncer (Debian's package; installed on
the fly when the tests run as root, as in CI) on a free port of 127.0.0.1, with
``pool_mode = transaction`` and one or two server connections, so every client's
transactions share the same few server sessions: any session state tenant_sync left
behind, or any statement it prepared server-side, would reach the next client.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from conftest import server_url
from helpers import build_with_create_all, differences, make_schemas, require_loopback, tables
from models import V2_TENANT_TABLES, model_v1, model_v2
from online_models import events_model, load_events, online_leftovers
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync


def find_pgbouncer() -> str:
    """The pgbouncer binary; skips the calling test, with the reason, when there is none.

    The tests never install it themselves: ``.ci/install-test-tools`` does, from the
    README's test command.
    """
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found:
        return found
    pytest.skip(
        "pgbouncer not found: install it (.ci/install-test-tools, or the pgbouncer package)"
    )


def _server_host(server: URL) -> str:
    """Where pgbouncer finds the server: its host, or the socket directory of the
    embedded server (in the URL's query)."""
    host = server.host or server.query.get("host") or "127.0.0.1"
    return host if isinstance(host, str) else host[0]


def _pgbouncer_account(host: str) -> pwd.struct_passwd:
    """``postgres``; for a server on a Unix socket (the embedded one), the account that
    owns the socket's directory, the only one besides root that may enter it."""
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid)
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root without a 'postgres' account for pgbouncer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pooler:
    """A running pgbouncer and how to reach a database through it."""

    port: int
    directory: Path

    def url(self, database_url: URL) -> URL:
        # Through the pooler: not the server's own socket, if its URL names one.
        direct = database_url.difference_update_query(["host", "port"])
        return direct.set(host="127.0.0.1", port=self.port)

    def connect(self, database_url: URL) -> psycopg.Connection[tuple[object, ...]]:
        """A plain client of the pooler (autocommit, never preparing statements)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=database_url.username,
            password=database_url.password,
            dbname=database_url.database,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=5,
        )


@pytest.fixture
def start_pgbouncer() -> Iterator[Callable[[int], Pooler]]:
    """Start pgbouncer with ``pool_size`` server connections per database; stop it after."""
    binary = find_pgbouncer()
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(pool_size: int) -> Pooler:
        require_loopback()  # pgbouncer listens on 127.0.0.1
        directory = Path(tempfile.mkdtemp(prefix="ts-pgbouncer-"))
        directory.chmod(0o755)
        server, port = server_url(), free_port()
        userlist = f'"{server.username}" "{server.password or ""}"\n'
        (directory / "userlist.txt").write_text(userlist)
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={_server_host(server)} port={server.port or server.query.get('port', 5432)}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 200\nquery_wait_timeout = 60\n"
            f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
        )
        command = [binary, str(directory / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root: drop to another account
            account = _pgbouncer_account(_server_host(server))
            for path in [directory, *directory.iterdir()]:
                os.chown(path, account.pw_uid, account.pw_gid)
            command[1:1] = ["-u", account.pw_name]
        # Its log goes to logfile; stderr (a copy) to a file too, never to an unread pipe.
        with open(directory / "stderr.txt", "wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        started.append((process, directory))
        pooler = Pooler(port, directory)
        _await_pooler(process, pooler)
        return pooler

    try:
        yield start
    finally:
        for process, directory in started:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            shutil.rmtree(directory, ignore_errors=True)


def _await_pooler(process: subprocess.Popen[bytes], pooler: Pooler) -> None:
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            stderr = (pooler.directory / "stderr.txt").read_text(errors="replace")
            raise AssertionError(f"pgbouncer exited with {process.returncode}: {stderr}")
        try:
            with socket.create_connection(("127.0.0.1", pooler.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("pgbouncer did not listen within 15s") from None
            time.sleep(0.05)


# -- what a client of the pooler sees ---------------------------------------------------

# Temporary objects count too, less tenant_sync's own recheck function, which a session
# keeps on purpose (its plan is kept with it) and no other client can call by accident.
SESSION_QUERY = (
    "SELECT current_setting('search_path'), current_setting('lock_timeout'),"
    " current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout'),"
    " (SELECT count(*) FROM pg_prepared_statements)"
    " + (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())"
    " + (SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()"
    "    AND proname NOT LIKE 'tenant\\_sync\\_stamp\\_%'), pg_backend_pid()"
)


def session_state(pooler: Pooler, database_url: URL, clients: int) -> set[tuple[object, ...]]:
    """Session settings, prepared statements and temporary objects of every server connection.

    ``clients`` clients each hold a transaction open at once, so with a pool of that
    many server connections every one of them is looked at.
    """
    connections = [pooler.connect(database_url) for _ in range(clients)]
    try:
        rows = set()
        for conn in connections:
            conn.execute("BEGIN")
            row = conn.execute(SESSION_QUERY).fetchone()
            assert row is not None
            rows.add(tuple(row))
        assert len({row[-1] for row in rows}) == clients, "each client on its own server session"
        return {row[:-1] for row in rows}
    finally:
        for conn in connections:
            # Ended here, not by the pooler after the close: the leak check that follows
            # must not find this helper's own transaction still open on a server session.
            if not conn.closed:
                conn.execute("ROLLBACK")
            conn.close()


def test_pooler_passes_session_state_between_clients_so_the_leak_check_can_see_it(
    database_url: URL, start_pgbouncer: Callable[[int], Pooler]
) -> None:
    pooler = start_pgbouncer(1)
    with pooler.connect(database_url) as first, pooler.connect(database_url) as second:
        first.execute("SET search_path TO canary")
        shown = second.execute("SHOW search_path").fetchone()
        second.execute("RESET search_path")
    assert shown == ("canary",), "a plain SET leaks to the next client of the pooler"


def test_syncs_through_the_pooler_leave_no_session_state_or_locks_behind(
    database_url: URL,
    engine: Engine,
    start_pgbouncer: Callable[[int], Pooler],
    admin_engine: Engine,
) -> None:
    pooler = start_pgbouncer(2)
    names = [f"tenant_{i:02d}" for i in range(12)]
    make_schemas(engine, names)
    baseline = session_state(pooler, database_url, clients=2)
    with engine.connect() as conn:  # a direct session: the server's defaults
        direct = conn.execute(sa.text(SESSION_QUERY)).one()
    assert baseline == {(*direct[:4], 0)}, "the pooled sessions start clean"

    url = pooler.url(database_url)
    with TenantSync(url, model_v1(), tenants="tenant_%", workers=2, lock_timeout=2.0) as ts:
        first = ts.sync_all()
    with TenantSync(
        url, model_v2(), tenants=[*names, "ghost"], workers=2, statement_timeout=30.0
    ) as ts:
        dry = ts.sync_all(dry_run=True)
        second = ts.sync_all()
        signups = [ts.sync_tenant(f"signup_{i}") for i in range(6)]
        listed = ts.list_tenants()

    assert first.ok and first.counts["migrated"] == 12, first.failed()
    assert dry.counts["planned"] == 12
    assert second.counts["migrated"] == 12 and second.counts["failed"] == 1
    assert "does not exist" in (second.get("ghost").error or "")  # type: ignore[union-attr]
    assert [r.status for r in signups] == ["migrated"] * 6, [r.error for r in signups]
    assert listed[-1] == "ghost"
    for name in [*names, "signup_0"]:
        assert tables(engine, name) == V2_TENANT_TABLES

    assert session_state(pooler, database_url, clients=2) == baseline
    with admin_engine.connect() as conn:
        left = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE l.locktype = 'advisory'),"
                " count(*) FILTER (WHERE a.state LIKE 'idle in transaction%')"
                " FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid"
                " WHERE a.datname = :db"
            ),
            {"db": database_url.database},
        ).one()
    assert tuple(left) == (0, 0), "no advisory lock held, no transaction left open"


# -- psycopg's prepared statements ------------------------------------------------------


def _sync_through(engine_or_url: Engine | URL, engine: Engine) -> list[TenantResult]:
    """Build 16 tenants at v1, move them to v2, sign up 8 more from two threads.

    Two workers on two connections: each connection runs tenant_sync's per-tenant
    statements many more times than psycopg's default prepare_threshold (5).
    """
    names = [f"tenant_{i:02d}" for i in range(16)]
    make_schemas(engine, names)
    results: list[TenantResult] = []
    reports: list[SyncReport] = []
    for model in (model_v1, model_v2):
        with TenantSync(engine_or_url, model(), tenants="tenant_%", workers=2) as ts:
            reports.append(ts.sync_all())
    with TenantSync(engine_or_url, model_v2(), workers=2) as ts:

        def sign_up(offset: int) -> None:
            for i in range(offset, 8, 2):
                results.append(ts.sync_tenant(f"signup_{i}"))

        threads = [threading.Thread(target=sign_up, args=(offset,)) for offset in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    for report in reports:
        results += report.results
    return results


def _errors(results: list[TenantResult]) -> list[str]:
    return [f"{r.schema}: {r.error}" for r in results if r.status != "migrated"]


def test_url_engine_never_prepares_so_the_pooler_does_not_break_it(
    database_url: URL, engine: Engine, start_pgbouncer: Callable[[int], Pooler]
) -> None:
    pooler = start_pgbouncer(2)
    results = _sync_through(pooler.url(database_url), engine)
    assert _errors(results) == []
    assert len(results) == 16 + 16 + 8
    (state,) = {row[4] for row in session_state(pooler, database_url, clients=2)}
    assert state == 0, "no statement left prepared on the server connections"


def test_caller_engine_without_prepares_works_through_the_pooler(
    database_url: URL, engine: Engine, start_pgbouncer: Callable[[int], Pooler]
) -> None:
    pooler = start_pgbouncer(2)
    caller = sa.create_engine(
        pooler.url(database_url), pool_size=3, connect_args={"prepare_threshold": None}
    )
    try:
        results = _sync_through(caller, engine)
    finally:
        caller.dispose()
    assert _errors(results) == []


def test_caller_engine_with_psycopg_defaults_works_through_the_pooler(
    database_url: URL, engine: Engine, start_pgbouncer: Callable[[int], Pooler]
) -> None:
    pooler = start_pgbouncer(1)  # one server session: both clients' "_pg3_0" collide there
    caller = sa.create_engine(pooler.url(database_url), pool_size=3)
    try:
        results = _sync_through(caller, engine)
    finally:
        caller.dispose()
    assert _errors(results) == []


def test_the_online_path_through_the_pooler_finishes_and_leaves_no_session_state(
    database_url: URL,
    engine: Engine,
    start_pgbouncer: Callable[[int], Pooler],
    admin_engine: Engine,
) -> None:
    """CREATE INDEX CONCURRENTLY and the validations, through two shared server sessions:
    the statements outside a transaction set nothing, and name every object in full."""
    pooler = start_pgbouncer(2)
    names = ["tenant_a", "tenant_b", "tenant_c"]
    make_schemas(engine, names)
    baseline = session_state(pooler, database_url, clients=2)
    url = pooler.url(database_url)
    with TenantSync(url, events_model(False), tenants="tenant_%", workers=2) as ts:
        assert ts.sync_all().ok
    with engine.begin() as conn:
        for name in names:
            load_events(conn, name, 2_000)
    build_with_create_all(engine, events_model(True), "reference")
    with TenantSync(url, events_model(True), tenants="tenant_%", workers=2, online="always") as ts:
        report = ts.sync_all()
    assert report.counts["migrated"] == 3, [(r.schema, r.status, r.error) for r in report.results]
    with engine.connect() as conn:
        for name in names:
            assert online_leftovers(conn, name) == []
    for name in names:
        assert differences(engine, name, "reference") == {}
        result = report.get(name)
        assert result is not None and any("CONCURRENTLY" in s for s in result.sql)
    assert session_state(pooler, database_url, clients=2) == baseline
