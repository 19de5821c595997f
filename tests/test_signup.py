"""Signing up one tenant: create and build in one transaction, safe under races."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from helpers import make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync


def test_sync_tenant_creates_and_builds_a_new_schema(database_url: URL, engine: Engine) -> None:
    with TenantSync(database_url, model_v1()) as ts:
        result = ts.sync_tenant("acme")
    assert result.status == "migrated"
    assert result.operations[0] == "create schema acme"
    assert result.sql[0] == 'CREATE SCHEMA "acme"'
    assert tables(engine, "acme") == {"accounts", "projects", "tasks", "tenant_sync_version"}


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
