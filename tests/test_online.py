"""The online path: a big table's changes run lock-safe, after the tenant's transaction,
and a rerun finishes from the catalog whatever an earlier run left."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser import DevTools, find_chromium
from helpers import build_with_create_all, catalog_snapshot, differences, make_schemas
from online_models import events_model, index_only_model, load_events, online_leftovers
from sqlalchemy.engine import URL, Engine

from tenant_sync import ConfigurationError, SyncReport, TenantResult, TenantSync
from tenant_sync.output.html import write_html
from tenant_sync.output.summary import format_summary

BIG_ROWS = 5_000
#: Lowered from the default so that a table of BIG_ROWS is big, one of 10 is not.
MIN_ROWS = 1_000


def build_v1(url: URL, engine: Engine, rows: dict[str, int]) -> None:
    """Tenants at v1, each with ``rows[name]`` events (analyzed, so pg_class knows)."""
    make_schemas(engine, list(rows))
    with TenantSync(url, events_model(False), tenants=list(rows)) as ts:
        assert ts.sync_all().ok
    with engine.begin() as conn:
        for schema, count in rows.items():
            load_events(conn, schema, count)


def build_v1_with_a_null_note(url: URL, engine: Engine, rows: dict[str, int]) -> None:
    """As :func:`build_v1`, with one NULL note in ``big``: v2's NOT NULL fails there in
    phase 2, after phase 1 committed."""
    build_v1(url, engine, rows)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE big.events SET note = NULL WHERE id = 7")


def big_tenant_at_v2(url: URL) -> TenantSync:
    """A TenantSync of v2 for the tenant ``big``, big above MIN_ROWS."""
    return TenantSync(url, events_model(True), tenants=["big"], online_min_rows=MIN_ROWS)


def leftovers(engine: Engine, schema: str) -> list[str]:
    with engine.connect() as conn:
        return online_leftovers(conn, schema)


def event_count(engine: Engine, schema: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f'SELECT count(*) FROM "{schema}".events').scalar_one())


@pytest.fixture
def reference(engine: Engine) -> str:
    build_with_create_all(engine, events_model(True), "reference")
    return "reference"


def test_a_big_table_changes_online_and_ends_equal_to_create_all(
    database_url: URL, engine: Engine, reference: str
) -> None:
    build_v1(database_url, engine, {"big": BIG_ROWS, "small": 10})
    with TenantSync(
        database_url, events_model(True), tenants=["big", "small"], online_min_rows=MIN_ROWS
    ) as ts:
        report = ts.sync_all()
        again = ts.sync_all()

    big, small = report.get("big"), report.get("small")
    assert big is not None and small is not None
    assert (big.status, small.status) == ("migrated", "migrated"), (big.error, small.error)
    for schema in ("big", "small"):
        assert differences(engine, schema, reference) == {}
        assert leftovers(engine, schema) == []
    assert event_count(engine, "big") == BIG_ROWS

    # The big table took the online path, the small one its one transaction.
    big_sql = "\n".join(big.sql)
    assert "CREATE INDEX CONCURRENTLY ix_events_account_id" in big_sql
    assert 'CREATE UNIQUE INDEX CONCURRENTLY "uq_events_id_kind"' in big_sql
    assert "REFERENCES accounts (id) NOT VALID" in big_sql
    assert 'VALIDATE CONSTRAINT "fk_events_account"' in big_sql
    assert 'VALIDATE CONSTRAINT "tenant_sync_not_null_note"' in big_sql
    assert "CONCURRENTLY" not in "\n".join(small.sql) and not small.online
    assert len(big.online) == 8 and all(line.endswith(": done") for line in big.online)
    # The operations read the same on both paths: the online path is how they ran.
    assert big.operations == small.operations
    assert again.counts["unchanged"] == 2 and again.ok


@pytest.mark.parametrize(("mode", "concurrently"), [("never", False), ("always", True)])
def test_online_never_and_always_choose_the_path_whatever_the_size(
    database_url: URL, engine: Engine, reference: str, mode: str, concurrently: bool
) -> None:
    rows = BIG_ROWS if mode == "never" else 10
    build_v1(database_url, engine, {"tenant": rows})
    with TenantSync(
        database_url, events_model(True), tenants=["tenant"], online=mode, online_min_rows=MIN_ROWS
    ) as ts:
        (result,) = ts.sync_all().results
    assert result.status == "migrated", result.error
    assert ("CONCURRENTLY" in "\n".join(result.sql)) is concurrently
    assert differences(engine, "tenant", reference) == {}
    assert leftovers(engine, "tenant") == []


def test_a_dry_run_lists_the_online_steps_and_changes_nothing(
    database_url: URL, engine: Engine
) -> None:
    build_v1(database_url, engine, {"big": BIG_ROWS})
    before = catalog_snapshot(engine)
    with big_tenant_at_v2(database_url) as ts:
        (result,) = ts.sync_all(dry_run=True).results
    assert result.status == "planned"
    assert result.online[0] == (
        "create unique index uq_events_id_kind on events (id, kind) concurrently: planned"
    )
    assert all(line.endswith(": planned") for line in result.online)
    assert any("CREATE INDEX CONCURRENTLY" in statement for statement in result.sql)
    assert catalog_snapshot(engine) == before


def test_a_failed_online_step_leaves_the_tenant_partial_and_a_rerun_finishes_it(
    database_url: URL, engine: Engine, reference: str
) -> None:
    build_v1_with_a_null_note(database_url, engine, {"big": BIG_ROWS})
    with big_tenant_at_v2(database_url) as ts:
        report = ts.sync_all()
        (result,) = report.results
        assert result.status == "partial"
        assert result.error is not None
        assert "validate constraint tenant_sync_not_null_note on events" in result.error
        assert "violated by some row" in result.error
        assert result.online[-2:] == [
            "set not null on events.note, checked by tenant_sync_not_null_note: not run",
            "drop constraint tenant_sync_not_null_note on events: not run",
        ]
        # Phase 1 and the steps before the failure stay: new rows are checked already.
        assert leftovers(engine, "big") == [
            "helper tenant_sync_not_null_note",
            "not validated tenant_sync_not_null_note",
        ]
        assert "Partial tenants (1): a rerun finishes them" in format_summary(report)
        assert not report.get("big").in_sync  # type: ignore[union-attr]
        assert SyncReport.from_dict(json.loads(report.to_json())).results[0].online == result.online

        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE big.events SET note = 'filled' WHERE id = 7")
        (rerun,) = ts.sync_all().results
    assert rerun.status == "migrated", rerun.error
    assert rerun.operations == ["set NOT NULL on events.note"]
    assert differences(engine, "big", reference) == {}
    assert leftovers(engine, "big") == []
    assert event_count(engine, "big") == BIG_ROWS


def invalid_index_left_by_a_timed_out_build(engine: Engine, schema: str) -> None:
    """What a killed ``CREATE INDEX CONCURRENTLY`` leaves: the index, invalid.

    The build commits the index to the catalog, then waits for the transactions that
    write the table; one held open makes it time out there.
    """
    with engine.connect() as writer, engine.connect() as builder:
        writer.begin()
        writer.exec_driver_sql(f"INSERT INTO {schema}.events (id, note) VALUES (-1, 'w')")
        builder.execution_options(isolation_level="AUTOCOMMIT")
        builder.exec_driver_sql("SET lock_timeout = '200ms'")
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            builder.exec_driver_sql(
                f"CREATE INDEX CONCURRENTLY ix_events_account_id ON {schema}.events (account_id)"
            )
        builder.exec_driver_sql("RESET lock_timeout")
        writer.rollback()


def test_a_rerun_finishes_from_the_catalog_what_an_interrupted_run_left(
    database_url: URL, engine: Engine, reference: str
) -> None:
    """An invalid index, a FOREIGN KEY not validated, a helper CHECK: the state a run
    killed in its phase 2 leaves; nothing else records it."""
    build_v1(database_url, engine, {"big": BIG_ROWS})
    invalid_index_left_by_a_timed_out_build(engine, "big")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "ALTER TABLE big.events ADD CONSTRAINT fk_events_account FOREIGN KEY (account_id)"
            " REFERENCES big.accounts (id) NOT VALID;"
            " ALTER TABLE big.events ADD CONSTRAINT tenant_sync_not_null_note"
            " CHECK (note IS NOT NULL) NOT VALID"
        )
    assert leftovers(engine, "big") == [
        "helper tenant_sync_not_null_note",
        "invalid index ix_events_account_id",
        "not validated fk_events_account",
        "not validated tenant_sync_not_null_note",
    ]
    with big_tenant_at_v2(database_url) as ts:
        (planned,) = ts.sync_all(dry_run=True).results
        assert "validate constraint fk_events_account on events" in planned.operations
        assert any("drop index ix_events_account_id" in op for op in planned.operations)
        (result,) = ts.sync_all().results
    assert result.status == "migrated", result.error
    assert "drop index ix_events_account_id on events concurrently: done" in result.online
    assert "add check constraint tenant_sync_not_null_note" not in "\n".join(result.operations)
    assert differences(engine, "big", reference) == {}
    assert leftovers(engine, "big") == []


def test_writers_and_signups_go_on_while_an_index_builds_online(
    database_url: URL, engine: Engine
) -> None:
    """The build waits for an open writing transaction; meanwhile another writer is not
    held up behind it (a plain CREATE INDEX would queue every writer behind its lock)."""
    build_v1(database_url, engine, {"big": BIG_ROWS})
    with engine.connect() as open_writer:
        open_writer.begin()
        open_writer.exec_driver_sql("INSERT INTO big.events (id, note) VALUES (-1, 'open')")
        with TenantSync(
            database_url, index_only_model(), tenants=["big"], online_min_rows=MIN_ROWS
        ) as ts:
            results: list[TenantResult] = []
            sync = threading.Thread(target=lambda: results.extend(ts.sync_all().results))
            sync.start()
            try:
                wait_for_build_waiting(engine)
                with engine.begin() as writer:
                    writer.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
                    writer.exec_driver_sql("INSERT INTO big.events (id, note) VALUES (-2, 'n')")
                    writer.exec_driver_sql("UPDATE big.events SET amount = 1 WHERE id = 1")
                # A signup meanwhile is built at once, in one transaction.
                with TenantSync(database_url, index_only_model(), tenants=[]) as signups:
                    signup = signups.sync_tenant("tenant_new")
                assert signup.status == "migrated", signup.error
            finally:
                open_writer.commit()
                sync.join(timeout=60)
    (result,) = results
    assert result.status == "migrated", result.error
    assert event_count(engine, "big") == BIG_ROWS + 2


def wait_for_build_waiting(engine: Engine) -> None:
    """Until a CREATE INDEX CONCURRENTLY waits for older transactions (at most 30 s)."""
    with engine.connect() as conn:
        for _ in waiting(30.0):
            waiting_builds = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'CREATE %%INDEX CONCURRENTLY%%'"
            ).scalar_one()
            conn.rollback()
            if waiting_builds:
                return
    raise AssertionError("no index build started waiting")


def waiting(seconds: float) -> Iterator[None]:
    """Poll every 20 ms for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"online": "sometimes"}, "online must be 'auto', 'always' or 'never', got 'sometimes'"),
        ({"online_min_rows": -1}, "online_min_rows must be an integer >= 0, got -1"),
        ({"online_min_rows": 1.5}, "online_min_rows must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_online_options_are_one_line_errors(
    database_url: URL, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        TenantSync(database_url, events_model(True), **options)  # type: ignore[arg-type]


def test_two_runs_at_once_end_migrated_or_partial_and_a_rerun_has_nothing_left(
    database_url: URL, engine: Engine, reference: str
) -> None:
    """The tenant's lock serializes phase 1, not phase 2: a second run may find the
    first's work in flight and stop ``partial``; none fails, and a rerun finishes."""
    names = [f"tenant_{i}" for i in range(4)]
    build_v1(database_url, engine, dict.fromkeys(names, 2_000))
    reports: list[SyncReport] = []

    def run() -> None:
        with TenantSync(
            database_url, events_model(True), tenants="tenant_%", online="always", workers=2
        ) as ts:
            reports.append(ts.sync_all())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    results = [result for report in reports for result in report.results]
    assert len(results) == 8
    assert {result.status for result in results} <= {"migrated", "unchanged", "partial"}, [
        (result.schema, result.status, result.error) for result in results
    ]
    with TenantSync(database_url, events_model(True), tenants="tenant_%", online="always") as ts:
        rerun = ts.sync_all()
    assert rerun.ok and not rerun.counts["partial"]
    for name in names:
        assert differences(engine, name, reference) == {}
        assert leftovers(engine, name) == []
        assert event_count(engine, name) == 2_000


def test_new_columns_with_a_foreign_key_an_index_and_unique_are_added_online(
    database_url: URL, engine: Engine
) -> None:
    """add_column would build the column's index (index=True, unique=True) in the
    transaction, and the foreign key would scan the table under a lock that blocks
    writes: all go to phase 2."""
    build_v1(database_url, engine, {"big": BIG_ROWS})
    model = events_model(False)
    events = model.tables["events"]
    events.append_column(
        sa.Column(
            "ref_id", sa.Integer, sa.ForeignKey("accounts.id", name="fk_events_ref"), index=True
        )
    )
    events.append_column(sa.Column("code", sa.Text, unique=True))
    build_with_create_all(engine, model, "reference")
    with TenantSync(database_url, model, tenants=["big"], online_min_rows=MIN_ROWS) as ts:
        (result,) = ts.sync_all().results
    assert result.status == "migrated", result.error
    sql = "\n".join(result.sql)
    assert "CREATE INDEX ix_events_ref_id" not in sql and " UNIQUE (code)" not in sql
    assert "CREATE INDEX CONCURRENTLY ix_events_ref_id" in sql
    assert 'CREATE UNIQUE INDEX CONCURRENTLY "events_code_key"' in sql
    assert 'ADD CONSTRAINT "events_code_key" UNIQUE USING INDEX "events_code_key"' in sql
    assert 'VALIDATE CONSTRAINT "fk_events_ref"' in sql
    assert differences(engine, "big", "reference") == {}
    assert leftovers(engine, "big") == []


def test_a_session_idle_in_an_old_transaction_makes_the_build_wait_not_hang(
    database_url: URL, engine: Engine
) -> None:
    """CREATE INDEX CONCURRENTLY would wait for a forgotten transaction for good: the
    tenant is left partial, naming the session, and a rerun builds once it is gone."""
    build_v1(database_url, engine, {"big": BIG_ROWS})
    with engine.connect() as forgotten:
        forgotten.begin()
        forgotten.exec_driver_sql("INSERT INTO big.events (id, note) VALUES (-1, 'idle')")
        pid = forgotten.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with engine.connect() as watcher:
            for _ in waiting(30.0):
                age = watcher.exec_driver_sql(
                    "SELECT now() - xact_start > interval '0.3 s' FROM pg_stat_activity"
                    f" WHERE pid = {pid} AND state = 'idle in transaction'"
                ).scalar()
                watcher.rollback()
                if age:
                    break
        # lock_timeout is what "old" means: the transaction is older than it now.
        with TenantSync(
            database_url,
            index_only_model(),
            tenants=["big"],
            lock_timeout=0.3,
            online_min_rows=MIN_ROWS,
        ) as ts:
            (result,) = ts.sync_all().results
        forgotten.rollback()
    assert result.status == "partial"
    assert f"session {pid} is idle in transaction for" in (result.error or "")
    assert result.online[0].startswith(
        "create index ix_events_account_id on events (account_id) concurrently: waiting"
    )
    assert leftovers(engine, "big") == []  # nothing was started
    with TenantSync(database_url, index_only_model(), tenants=["big"]) as ts:
        (rerun,) = ts.sync_all().results
    assert rerun.status == "migrated", rerun.error


def test_a_canary_left_partial_stops_the_waves(database_url: URL, engine: Engine) -> None:
    """A canary whose online steps did not finish counts as failed for ``max_failures``."""
    build_v1_with_a_null_note(database_url, engine, {"big": BIG_ROWS, "small": 10})
    with TenantSync(
        database_url, events_model(True), tenants=["big", "small"], online_min_rows=MIN_ROWS
    ) as ts:
        report = ts.sync_all(waves=[["big"], 1.0])
    assert report.get("big").status == "partial"  # type: ignore[union-attr]
    small = report.get("small")
    assert small is not None and small.status == "skipped"
    assert report.waves[0].note == (
        "1 of 1 tenants failed or were left partial in wave 1, more than max_failures allows (0)"
    )


def test_a_data_step_between_online_phases(database_url: URL, engine: Engine) -> None:
    """Expand (a column, an index built concurrently), backfill (the step), contract
    (NOT NULL through a validated helper CHECK): every phase online on a big table."""
    build_v1(database_url, engine, {"big": BIG_ROWS})
    model = index_only_model()
    model.tables["events"].append_column(sa.Column("label", sa.Text, nullable=False))
    build_with_create_all(engine, model, "reference")
    with TenantSync(database_url, model, tenants=["big"], online_min_rows=MIN_ROWS) as ts:

        @ts.step("fill events.label", batch_size=2_000)
        def fill_label(conn: sa.Connection, tenant: object) -> int:
            return int(
                conn.exec_driver_sql(
                    "UPDATE events SET label = kind WHERE id IN"
                    " (SELECT id FROM events WHERE label IS NULL LIMIT 2000)"
                ).rowcount
            )

        (result,) = ts.sync_all().results
    assert result.status == "migrated", result.error
    assert result.steps == ["fill events.label"]
    assert "create index ix_events_account_id on events (account_id) concurrently: done" in (
        result.online
    )
    assert "set not null on events.label, checked by tenant_sync_not_null_label: done" in (
        result.online
    )
    assert differences(engine, "big", "reference") == {}
    assert leftovers(engine, "big") == []


def test_the_html_report_shows_a_partial_tenant_and_its_online_steps(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    chromium = find_chromium()
    build_v1_with_a_null_note(database_url, engine, {"big": BIG_ROWS})
    with big_tenant_at_v2(database_url) as ts:
        report = ts.sync_all()
    (result,) = report.results
    assert result.status == "partial"
    page_file = write_html(report, tmp_path / "report.html")
    with DevTools(chromium, tmp_path / "profile") as page:
        page.open(page_file.as_uri())
        verdict = page.evaluate("document.querySelector('h1 .verdict').innerText")
        assert verdict == "no failures, 1 partial"
        badge = "document.querySelector('tr.tenant[data-schema=big] .badge').innerText"
        assert page.evaluate(badge) == "partial"
        page.click("tr.tenant[data-schema=big] button.toggle")
        detail = "document.querySelector('tr.detail[data-schema=big]')"
        assert page.wait_for(f"{detail} && {detail}.checkVisibility()")
        sections = dict(
            page.evaluate(
                f"Array.from({detail}.querySelectorAll('section'), (s) => [s.querySelector('h3')"
                ".textContent, Array.from(s.querySelectorAll('li'), (li) => li.innerText)])"
            )
        )
    assert sections["Online steps, after the tenant's transaction"] == result.online
