"""Signing up one tenant: create and build in one transaction, safe under races."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from helpers import catalog_snapshot, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync


def test_sync_tenant_creates_and_builds_a_new_schema(database_url: URL, engine: Engine) -> None:
    with TenantSync(database_url, model_v1()) as ts:
        result = ts.sync_tenant("acme")
    assert result.status == "migrated"
    assert result.operations[0] == "create schema acme"
    assert result.sql[0] == 'CREATE SCHEMA "acme"'
    assert tables(engine, "acme") == {
        "accounts",
        "projects",
        "tasks",
        "tenant_sync_version",
        "tenant_sync_history",
    }


def test_sync_tenant_without_create_refuses_a_missing_schema(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, model_v1()) as ts:
        result = ts.sync_tenant("nobody", create=False)
    assert result.status == "failed"
    assert result.error is not None and "does not exist" in result.error
    assert tables(engine, "nobody") == set()


def test_concurrent_signups_race_a_sync_all_and_each_tenant_is_built_once(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, [f"old_{i}" for i in range(6)])
    with TenantSync(database_url, model_v1(), workers=3) as ts:
        ts.sync_all()
    new_names = ["new_a", "new_b", "new_c"]
    signups = [name for name in new_names for _ in range(4)]  # each new tenant 4 times
    start = threading.Barrier(len(signups) + 1)

    with TenantSync(database_url, model_v2(), workers=3) as ts:

        def sign_up(name: str) -> TenantResult:
            start.wait()
            return ts.sync_tenant(name)

        def sync_everything() -> SyncReport:
            start.wait()
            return ts.sync_all()

        with ThreadPoolExecutor(len(signups) + 1) as pool:
            everything = pool.submit(sync_everything)
            results = list(pool.map(sign_up, signups))
            report = everything.result()

    all_results = results + report.results
    assert [r.error for r in all_results if r.status == "failed"] == []
    for name in new_names:
        built = [r for r in all_results if r.schema == name and r.status == "migrated"]
        assert len(built) == 1, f"{name} built {len(built)} times"
        assert "labels" in tables(engine, name)
    assert all(r.status == "migrated" for r in report.results if r.schema.startswith("old_"))


def test_signup_in_a_dry_run_creates_nothing(database_url: URL, engine: Engine) -> None:
    with TenantSync(database_url, model_v1()) as ts:
        result = ts.sync_tenant("maybe", dry_run=True)
    assert result.status == "planned"
    assert result.sql[0] == 'CREATE SCHEMA "maybe"'
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'maybe'")).first()
    assert found is None


def _schema_catalog(engine: Engine, schema: str) -> list[tuple[object, ...]]:
    """A tenant's catalog rows, its name taken out, to compare one tenant with another."""
    rows = [row[1:] for row in catalog_snapshot(engine) if row[0] == schema]
    return [tuple(str(v).replace(schema, "<t>") for v in row) for row in rows]


def _reflection_queries(engine: Engine) -> list[str]:
    """Collects the catalog queries SQLAlchemy runs on ``engine`` from now on."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "pg_attribute" in statement or "pg_class" in statement:
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def test_later_signups_build_from_the_first_ones_plan_without_reflection(
    engine: Engine,
) -> None:
    with TenantSync(engine, model_v2()) as ts:
        first = ts.sync_tenant("first")
        reflection = _reflection_queries(engine)
        later = [ts.sync_tenant(name) for name in ("second", "third")]
    assert reflection == []
    assert first.status == "migrated" and [r.status for r in later] == ["migrated"] * 2
    for result in later:
        name = result.schema
        assert result.operations == [op.replace("first", name) for op in first.operations]
        assert result.sql[0] == f'CREATE SCHEMA "{name}"' and result.sql[1:] == first.sql[1:]
        assert _schema_catalog(engine, name) == _schema_catalog(engine, "first")
    # And Alembic, comparing each tenant alone, finds nothing left to do.
    with TenantSync(engine, model_v2(), tenants=["first", "second", "third"], verify=True) as ts:
        report = ts.sync_all()
    assert [r.status for r in report.results] == ["unchanged"] * 3


def test_a_signup_into_an_empty_schema_the_application_made_builds_it(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_tenant("first")
        make_schemas(engine, ["premade"])
        result = ts.sync_tenant("premade")
    assert result.status == "migrated", result.error
    assert "create schema premade" not in result.operations
    assert _schema_catalog(engine, "premade") == _schema_catalog(engine, "first")


def test_a_signup_of_a_tenant_that_has_tables_compares_it_and_keeps_its_data(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["old"])
    with TenantSync(database_url, model_v1(), tenants=["old"]) as ts:
        ts.sync_all()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO old.accounts (email) VALUES ('a@example.com')"))
        conn.execute(sa.text("CREATE TABLE old.notes (body text)"))
    with TenantSync(database_url, model_v2()) as ts:
        assert ts.sync_tenant("new").status == "migrated"  # keeps the plan of an empty schema
        result = ts.sync_tenant("old")
    assert result.status == "migrated", result.error
    assert "create schema old" not in result.operations
    assert not any(op.startswith("create table accounts") for op in result.operations)
    assert "labels" in tables(engine, "old") and "notes" in tables(engine, "old")
    with engine.connect() as conn:
        emails = conn.execute(sa.text("SELECT email FROM old.accounts")).scalars().all()
    assert emails == ["a@example.com"]


def test_racing_signups_from_the_kept_plan_build_each_tenant_once(
    database_url: URL, engine: Engine
) -> None:
    signups = [name for name in ("new_a", "new_b", "new_c") for _ in range(4)]
    start = threading.Barrier(len(signups))
    with TenantSync(database_url, model_v2(), workers=3) as ts:
        ts.sync_tenant("first")

        def sign_up(name: str) -> TenantResult:
            start.wait()
            return ts.sync_tenant(name)

        with ThreadPoolExecutor(len(signups)) as pool:
            results = list(pool.map(sign_up, signups))
    assert [r.error for r in results if r.status == "failed"] == []
    for name in ("new_a", "new_b", "new_c"):
        statuses = sorted(r.status for r in results if r.schema == name)
        assert statuses == ["migrated", "unchanged", "unchanged", "unchanged"], name
        assert _schema_catalog(engine, name) == _schema_catalog(engine, "first")


def test_with_verify_every_signup_is_compared_with_the_model(engine: Engine) -> None:
    with TenantSync(engine, model_v1(), verify=True) as ts:
        ts.sync_tenant("first")
        reflection = _reflection_queries(engine)
        second = ts.sync_tenant("second")
    assert second.status == "migrated"
    assert reflection != []
