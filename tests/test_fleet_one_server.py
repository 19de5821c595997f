"""A fleet whose databases are on one server: one comparison per shape, one cap on tenants.

Each database holds tenants at v1 (one shape); the fleet syncs them to v2.  What is
checked: every tenant equals a schema built by ``create_all`` in its own database, the
shape is compared with the model once for the whole fleet (the count each database
logs), a comparison that failed in one database is made again by the next, and
``max_workers`` caps the tenants in flight over all the databases, which run at once.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database
from helpers import build_with_create_all, differences, make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Connection, Engine

from tenant_sync import Fleet, TenantResult, TenantSync

TENANTS = ["tenant_1", "tenant_2", "tenant_3"]
DATABASES = ("north", "south", "west")


@pytest.fixture
def one_server(admin_engine: Engine, request: pytest.FixtureRequest) -> Iterator[dict[str, URL]]:
    """Three fresh databases on the test server, each with TENANTS at v1."""
    urls: dict[str, URL] = {}
    v1 = model_v1()  # one model for all: its SQL, hence its tenants' memos, are the same
    try:
        for name in DATABASES:
            urls[name] = create_database(admin_engine, f"{request.node.name[5:30]}_{name}")
            engine = sa.create_engine(urls[name], poolclass=sa.NullPool)
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY)"))
            make_schemas(engine, TENANTS)
            with TenantSync(urls[name], v1, workers=2) as ts:
                assert ts.sync_all().counts["migrated"] == len(TENANTS)
            build_with_create_all(engine, model_v2(), "reference")
            engine.dispose()
        yield urls
    finally:
        for url in urls.values():
            drop_database(admin_engine, url)


def _compared(caplog: pytest.LogCaptureFixture, databases: int = len(DATABASES)) -> int:
    """How many comparisons with the model the databases logged, in all."""
    counts = [
        int(found.group(1))
        for record in caplog.records
        if (found := re.search(r"\((\d+) compared with the model\)", record.getMessage()))
    ]
    assert len(counts) == databases, counts  # one line per database
    return sum(counts)


def _assert_equal_to_model(url: URL, schemas: list[str]) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        for schema in schemas:
            assert differences(engine, schema, "reference") == {}, (url.database, schema)
    finally:
        engine.dispose()


def test_databases_on_one_server_compare_a_shape_once_for_the_fleet(
    one_server: dict[str, URL], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tenant_sync")
    with Fleet(one_server, model_v2(), tenants="tenant_%", workers=2) as fleet:
        report = fleet.sync_all()
    assert report.ok, report.failed()
    assert report.counts["migrated"] == len(DATABASES) * len(TENANTS)
    assert _compared(caplog) == 1
    for url in one_server.values():
        _assert_equal_to_model(url, TENANTS)

    # Run again, all at v2 now: every tenant unchanged, again compared once.
    caplog.clear()
    with Fleet(one_server, model_v2(), tenants="tenant_%", workers=2) as fleet:
        again = fleet.sync_all()
        assert again.counts["unchanged"] == len(DATABASES) * len(TENANTS)
        assert _compared(caplog) == 1
        # The sharing lasts one run: a database synced alone afterwards compares itself.
        caplog.clear()
        alone = fleet.databases["north"].sync_all()
    assert alone.counts["unchanged"] == len(TENANTS)
    assert _compared(caplog, databases=1) == 1


def test_a_comparison_that_failed_in_one_database_is_made_again_by_the_next(
    one_server: dict[str, URL], caplog: pytest.LogCaptureFixture
) -> None:
    # The first database's first tenant is locked: comparing it times out there.  The
    # other databases list their tenants only once the first one's run is over.
    caplog.set_level(logging.INFO, logger="tenant_sync")
    first = one_server["north"]
    north_done = threading.Event()
    seen_in_north: list[str] = []

    def north_first(conn: Connection) -> list[str]:
        if conn.engine.url.database != first.database:
            assert north_done.wait(60), "north's run did not end"
        return TENANTS

    def count_north(result: TenantResult) -> None:
        if result.database == "north":
            seen_in_north.append(result.schema)
            if len(seen_in_north) == len(TENANTS):
                north_done.set()

    locker = psycopg.connect(first.set(drivername="postgresql").render_as_string(False))
    try:
        locker.execute("LOCK TABLE tenant_1.accounts IN ACCESS EXCLUSIVE MODE")
        with Fleet(
            one_server,
            model_v2(),
            tenants=north_first,
            workers=2,
            lock_timeout=0.3,
            retries=0,
            on_result=count_north,
        ) as fleet:
            report = fleet.sync_all()
    finally:
        locker.close()
    failed = {(result.database, result.schema) for result in report.failed()}
    assert failed == {("north", "tenant_1")}
    assert "lock" in (report.failed()[0].error or "").lower()
    _assert_equal_to_model(first, TENANTS[1:])
    for name in DATABASES[1:]:
        _assert_equal_to_model(one_server[name], TENANTS)
    # North's comparison failed and its tenants were compared one by one; the shape was
    # then compared once more, by south or west (not taking north's failure), for both.
    fell_back = [r for r in caplog.records if "syncing them one by one" in r.getMessage()]
    assert len(fell_back) == 1, [r.getMessage() for r in fell_back]
    assert _compared(caplog) == 1


def test_max_workers_caps_the_tenants_in_flight_over_the_whole_fleet(
    one_server: dict[str, URL], admin_engine: Engine
) -> None:
    # Every tenant's version row is locked, so each tenant's round trip waits for it
    # while holding its slot; the comparisons only read, and are not held up.
    lockers = [
        psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
        for url in one_server.values()
    ]
    databases = [url.database for url in one_server.values()]
    with (
        ThreadPoolExecutor(1) as run,
        Fleet(
            one_server, model_v2(), tenants="tenant_%", workers=2, max_workers=2, lock_timeout=60
        ) as fleet,
    ):
        try:
            for locker in lockers:
                for schema in TENANTS:
                    locker.execute(f"SELECT * FROM {schema}.tenant_sync_version FOR UPDATE")
            syncing = run.submit(fleet.sync_all)
            assert _waiting_reaches(admin_engine, databases, 2, within_s=30)
            # Without the cap, each database's two workers would be waiting by now, six
            # in all.  That no third tenant starts can only be watched for a while.
            assert not _waiting_reaches(admin_engine, databases, 3, within_s=2)
        finally:
            for locker in lockers:
                locker.close()
        report = syncing.result(timeout=120)
    assert report.ok, report.failed()
    assert report.counts["migrated"] == len(DATABASES) * len(TENANTS)
    for url in one_server.values():
        _assert_equal_to_model(url, TENANTS)


def _waiting_reaches(
    engine: Engine, databases: list[str | None], count: int, within_s: float
) -> bool:
    """Whether ``count`` sessions of ``databases`` wait for a lock at once, within ``within_s``."""
    deadline = time.monotonic() + within_s
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = ANY(:databases)"
                ),
                {"databases": databases},
            ).scalar_one()
            conn.rollback()
            if waiting >= count:
                return True
            time.sleep(0.02)
    return False
