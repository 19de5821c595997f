"""Many tenants, many workers: each tenant gets exactly its own changes."""

from __future__ import annotations

import sqlalchemy as sa
from helpers import columns, make_schemas, tables
from models import V2_TENANT_TABLES, model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def test_forty_tenants_with_eight_workers_do_not_leak_into_each_other(
    database_url: URL, engine: Engine
) -> None:
    names = [f"tenant_{i:02d}" for i in range(40)]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1(), workers=8) as ts:
        first = ts.sync_all()
    assert first.counts["migrated"] == 40
    # Give each tenant a marker row; a sync that ran in the wrong schema would show.
    with engine.begin() as conn:
        for name in names:
            conn.execute(
                sa.text(f'INSERT INTO "{name}".accounts (email) VALUES (:email)'), {"email": name}
            )
    # Drift a few tenants differently, so their plans differ.
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tenant_03.projects ADD COLUMN description text"))
        conn.execute(sa.text("CREATE INDEX ix_projects_name ON tenant_07.projects (name)"))

    with TenantSync(database_url, model_v2(), workers=8) as ts:
        report = ts.sync_all()

    assert report.ok and report.counts["migrated"] == 40
    assert "add column projects.description TEXT" not in report.get("tenant_03").operations  # type: ignore[union-attr]
    assert (
        "create index ix_projects_name on projects (name)" not in report.get("tenant_07").operations
    )  # type: ignore[union-attr]
    assert len(report.get("tenant_00").operations) == 4  # type: ignore[union-attr]
    for name in names:
        assert tables(engine, name) == V2_TENANT_TABLES
        assert {"description", "priority"} <= set(columns(engine, name, "projects"))
        with engine.connect() as conn:
            emails = conn.execute(sa.text(f'SELECT email FROM "{name}".accounts')).scalars().all()
        assert emails == [name]
    assert tables(engine, "public") == {"plans"}
    assert [r.schema for r in report.results] == names, "report in tenant order"
