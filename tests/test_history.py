"""Each tenant's history: written with the change it records, read back, kept small."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from helpers import build_with_create_all, differences, make_schemas, shapes_of, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine
from test_cli import run_cli, text_url

from tenant_sync import TenantSync
from tenant_sync.changes import Changes
from tenant_sync.history import HISTORY_KEPT, history_statements, read_history

TENANTS = ["acme", "globex", "initech"]


def test_every_change_is_recorded_in_its_tenant_with_the_run_that_made_it(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, TENANTS)
    with TenantSync(database_url, model_v1()) as ts:
        built = ts.sync_all()
    with TenantSync(database_url, model_v2()) as ts:
        changed = ts.sync_all()
        again = ts.sync_all()  # nothing to do: nothing recorded
        histories = {name: ts.history(name) for name in TENANTS}
        fingerprint = ts.model.fingerprint

    assert again.counts["unchanged"] == 3
    assert built.run is not None and changed.run is not None
    for name in TENANTS:
        newest, oldest = histories[name]
        result = changed.get(name)
        assert result is not None and result.status == "migrated"
        assert newest.run_id == changed.run.run_id and oldest.run_id == built.run.run_id
        assert newest.model_fingerprint == fingerprint
        assert list(newest.operations) == result.operations
        assert list(newest.sql) == result.sql
        assert newest.sql_digest == hashlib.sha256(";\n".join(result.sql).encode()).hexdigest()
        assert newest.at > oldest.at and 0 <= newest.duration_s < 60
        assert newest.versions["tenant_sync"] == changed.run.versions["tenant_sync"]
    assert "tenant_sync_history" in tables(engine, "acme")


def test_the_round_trip_makes_the_history_table_only_where_the_pass_saw_none(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["kept", "lost"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    with engine.begin() as conn:  # "lost" keeps its version table and its memo's stamp
        conn.execute(sa.text("DROP TABLE lost.tenant_sync_history"))
    shapes = shapes_of(engine, ["kept", "lost"])
    assert shapes["kept"].has_history_table and not shapes["lost"].has_history_table
    assert shapes["lost"].has_version_table
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all()
        assert report.counts["migrated"] == 2, report.counts
        assert [len(ts.history(name)) for name in ("kept", "lost")] == [2, 1]


def test_a_failed_tenant_records_nothing_and_the_history_is_no_part_of_its_shape(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["good", "bad"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW bad.labels AS SELECT 1 AS id"))
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all()
        assert report.counts["failed"] == 1
        assert len(ts.history("bad")) == 1, "the failed run's entry rolled back with it"
        assert len(ts.history("good")) == 2
    build_with_create_all(engine, model_v2(), "reference")
    assert differences(engine, "good", "reference") == {}


def test_the_tenant_compared_alone_and_a_signup_record_their_changes_too(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["alone"])
    with TenantSync(database_url, model_v1(), verify=True) as ts:
        report = ts.sync_all()
        signup = ts.sync_tenant("newcomer")
        alone, newcomer = ts.history("alone"), ts.history("newcomer")
    assert report.run is not None and [entry.run_id for entry in alone] == [report.run.run_id]
    assert list(alone[0].operations) == report.results[0].operations
    assert len(newcomer) == 1 and list(newcomer[0].operations) == signup.operations
    assert newcomer[0].operations[0] == "create schema newcomer"
    assert newcomer[0].run_id not in ("", report.run.run_id)


def test_a_tenant_keeps_its_newest_entries_only(engine: Engine) -> None:
    make_schemas(engine, ["busy"])
    changes = Changes(operations=("add column t.c TEXT",), sql=("ALTER TABLE t ADD COLUMN c TEXT",))
    for number in range(HISTORY_KEPT + 5):
        with engine.begin() as conn:  # each in its own transaction, as each sync is
            for statement in history_statements("busy", f"run{number}", "ab", changes):
                conn.execute(sa.text(statement))
    with engine.connect() as conn:
        entries = read_history(conn, "busy")
        assert read_history(conn, "nobody") == []
    assert len(entries) == HISTORY_KEPT
    assert entries[0].run_id == f"run{HISTORY_KEPT + 4}" and entries[-1].run_id == "run5"


def test_cli_history(database_url: URL, engine: Engine) -> None:
    make_schemas(engine, ["acme"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all()
    assert report.run is not None

    shown = run_cli("history", "--url", text_url(database_url), "acme", "--limit", "1", "--sql")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "acme: 1 change recorded, newest first"
    assert f"  run {report.run.run_id[:12]}  model " in lines[1]
    assert "  add column projects.description TEXT" in lines
    assert any(line.startswith("    ALTER TABLE") for line in lines)
    none = run_cli("history", "--url", text_url(database_url), "globex")
    assert none.returncode == 0 and none.stdout == "globex: no change recorded\n"
    system = run_cli("history", "--url", text_url(database_url), "public")
    assert system.returncode == 2
    assert system.stderr == "tenant-sync: error: 'public' is a system schema, not a tenant\n"
