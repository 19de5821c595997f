"""Syncing every tenant: first build, no-op second run, a model change, then a no-op again."""

from __future__ import annotations

import sqlalchemy as sa
from helpers import columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync

TENANTS = ["tenant_a", "tenant_b", "tenant_c"]


def test_first_sync_builds_every_tenant_and_second_run_is_a_no_op(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, TENANTS)
    with TenantSync(database_url, model_v1(), workers=2) as ts:
        first = ts.sync_all()
        second = ts.sync_all()

    assert first.ok and first.counts["migrated"] == 3
    for result in first.results:
        assert "create table accounts" in result.operations
        assert any(statement.startswith("CREATE TABLE tasks") for statement in result.sql)
    for schema in TENANTS:
        assert tables(engine, schema) == {
            "accounts",
            "projects",
            "tasks",
            "tenant_sync_version",
            "tenant_sync_history",
        }
    assert not tables(engine, "public") - {"plans"}, "nothing is created in public"

    assert second.counts == {
        "migrated": 0,
        "partial": 0,
        "unchanged": 3,
        "planned": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert all(not r.operations and not r.sql and not r.withheld for r in second.results)


def test_model_change_reaches_every_tenant_then_nothing_is_left_to_do(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, TENANTS)
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenant_b.accounts (email) VALUES ('b@example.com')"))

    with TenantSync(database_url, model_v2(), workers=3) as ts:
        change = ts.sync_all()
        again = ts.sync_all()

    assert change.ok and change.counts["migrated"] == 3
    assert sorted(change.results[0].operations) == sorted(
        [
            "create table labels",
            "add column projects.description TEXT",
            "add column projects.priority priority NOT NULL DEFAULT 'low'",
            "create index ix_projects_name on projects (name)",
        ]
    )
    for schema in TENANTS:
        assert columns(engine, schema, "projects")["priority"] == f"{schema}.priority"
        assert "labels" in tables(engine, schema)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT email FROM tenant_b.accounts")).scalar() == "b@example.com"
        )
    assert again.counts["unchanged"] == 3
    assert all(not r.operations and not r.withheld for r in again.results)


def test_idempotent_for_enums_jsonb_numerics_defaults_comments_indexes_and_foreign_keys(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["t1"])
    with TenantSync(database_url, model_v2()) as ts:
        ts.sync_all()
        again = ts.sync_tenant("t1", create=False)

    with engine.connect() as conn:
        fk_targets = set(
            conn.execute(
                sa.text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_constraint k"
                    " JOIN pg_class c ON c.oid = k.confrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE k.contype = 'f' AND k.connamespace = 't1'::regnamespace"
                )
            ).scalars()
        )
        comment = conn.execute(sa.text("SELECT obj_description('t1.accounts'::regclass)")).scalar()
    assert "public.plans" in fk_targets and "t1.accounts" in fk_targets
    assert comment == "customer accounts"
    assert columns(engine, "t1", "accounts")["settings"] == "jsonb"
    assert columns(engine, "t1", "tasks")["estimate"] == "numeric(6,1)"

    assert again.status == "unchanged", again.operations + again.withheld
    assert again.operations == [] and again.withheld == []


def test_results_carry_schema_status_timing_and_the_model_fingerprint(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["only"])
    with TenantSync(database_url, model_v1()) as ts:
        report = ts.sync_all()

    (result,) = report.results
    assert result.schema == "only" and result.status == "migrated"
    assert result.duration_s > 0 and result.attempts == 1 and result.error is None
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.text('SELECT version_num FROM "only".tenant_sync_version')
        ).scalar()
    assert recorded == ts.model.fingerprint
    assert report.to_dict()["counts"]["migrated"] == 1
