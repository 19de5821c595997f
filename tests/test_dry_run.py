"""A dry run changes nothing and shows the exact SQL a real run executes."""

from __future__ import annotations

from helpers import catalog_snapshot, make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def test_dry_run_leaves_the_catalog_identical_and_plans_the_sql_that_then_runs(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["fresh", "older"])
    with TenantSync(database_url, model_v1(), tenants=["older"]) as ts:
        ts.sync_all()
    before = catalog_snapshot(engine)

    with TenantSync(database_url, model_v2()) as ts:
        plan = ts.sync_all(dry_run=True)
        assert catalog_snapshot(engine) == before
        applied = ts.sync_all()

    assert plan.dry_run and plan.counts["planned"] == 2
    for planned in plan.results:
        real = applied.get(planned.schema)
        assert real is not None and real.status == "migrated"
        assert planned.operations == real.operations
        assert planned.sql == real.sql
    assert any(s.startswith("CREATE TYPE priority") for s in plan.get("older").sql)  # type: ignore[union-attr]


def test_dry_run_of_an_up_to_date_tenant_is_unchanged(database_url: URL, engine: Engine) -> None:
    make_schemas(engine, ["done"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
        report = ts.sync_all(dry_run=True)
    assert report.results[0].status == "unchanged" and report.results[0].sql == []
