"""A column renamed in the model with ``info={"renamed_from": ...}`` is renamed, data kept."""

from __future__ import annotations

import pytest
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


def _conflict(old_values: int, new_values: int) -> str:
    return (
        "rename column people.name to full_name: both columns exist"
        f" (name holds {old_values} values, full_name {new_values}); neither is dropped"
        " (move what name holds, then drop it yourself) (withheld: destructive)"
    )


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
    # Both names present: nothing is dropped; the conflict is a withheld difference.
    assert twice.operations == []
    assert twice.differences == [_conflict(0, 0)]
    assert set(columns(engine, "twice", "people")) == {"id", "name", "full_name"}
    assert new.status == "migrated"
    assert differences(engine, "new", "reference") == {}


def test_a_rename_conflict_drops_nothing_even_with_every_class_allowed(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, _people(1)) as ts:
        ts.sync_tenant("t_both")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t_both.people (name) VALUES ('Ada')"))
        conn.execute(sa.text("ALTER TABLE t_both.people ADD COLUMN full_name TEXT"))
        conn.execute(sa.text("INSERT INTO t_both.people (name) VALUES ('Grace')"))
        conn.execute(sa.text("UPDATE t_both.people SET full_name = 'copied' WHERE id = 1"))
        conn.execute(sa.text("UPDATE t_both.people SET full_name = 'x' WHERE id = 2"))
        conn.execute(sa.text("ALTER TABLE t_both.people ALTER COLUMN full_name SET NOT NULL"))

    with TenantSync(database_url, _people(2), allow_destructive=True) as ts:
        result = ts.sync_all().get("t_both")

    assert (
        result is not None
        and result.status == "unchanged"
        and result.differences == [_conflict(2, 2)]
    )
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT name FROM t_both.people")).scalars()
        assert sorted(kept) == ["Ada", "Grace"], "the old column and its data are still there"


def test_drift_says_when_a_rename_hint_is_no_longer_needed(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with TenantSync(database_url, _people(1)) as ts:
        ts.sync_tenant("t1")
        ts.sync_tenant("t2")
    hint = "the rename hint on people.full_name (renamed_from='name') is no longer needed"
    with TenantSync(database_url, _people(2)) as ts:
        ts.drift()
        assert hint not in caplog.text, "both tenants still have the old name"
        ts.sync_all()
        caplog.clear()
        ts.drift()
    assert hint in caplog.text
