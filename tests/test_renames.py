"""A column renamed in the model with ``info={"renamed_from": ...}`` is renamed, data kept."""

from __future__ import annotations

import sqlalchemy as sa
from helpers import build_with_create_all, columns, differences
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def _people(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    name = (
        sa.Column("full_name", sa.Text, nullable=False, info={"renamed_from": "name"})
        if version >= 2
        else sa.Column("name", sa.Text, nullable=False)
    )
    sa.Table("people", metadata, sa.Column("id", sa.Integer, primary_key=True), name)
    return metadata


def test_a_declared_rename_renames_keeps_the_rows_and_signups_get_the_new_name(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, _people(1)) as ts:
        ts.sync_tenant("old")
        ts.sync_tenant("twice")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO old.people (name) VALUES ('Ada'), ('Grace')"))
        conn.execute(sa.text("ALTER TABLE twice.people ADD COLUMN full_name TEXT NOT NULL"))
    model = _people(2)
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["old", "twice"]) as ts:
        planned = ts.sync_all(dry_run=True)
        report = ts.sync_all()
        new = ts.sync_tenant("new")

    old, twice = report.get("old"), report.get("twice")
    assert old is not None and twice is not None
    assert planned.get("old").operations == ["rename column people.name to full_name"]  # type: ignore[union-attr]
    assert old.status == "migrated" and old.classes == ["safe"], old
    assert old.operations == ["rename column people.name to full_name"]
    assert differences(engine, "old", "reference") == {}
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT full_name FROM old.people ORDER BY id")).scalars()
        assert list(names) == ["Ada", "Grace"]
    # Both names present: nothing is dropped; the old column is a withheld difference.
    assert twice.operations == []
    assert twice.differences == ["drop column people.name (withheld: destructive)"]
    assert set(columns(engine, "twice", "people")) == {"id", "name", "full_name"}
    assert new.status == "migrated"
    assert differences(engine, "new", "reference") == {}
