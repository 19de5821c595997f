"""Changes that can lose data are withheld unless allowed; the data stays put."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from helpers import columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


@pytest.fixture
def tenant_at_v2_with_rows(database_url: URL, engine: Engine) -> str:
    make_schemas(engine, ["t"])
    with TenantSync(database_url, model_v2()) as ts:
        ts.sync_all()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t.accounts (id, email) VALUES (1, 'a@x')"))
        conn.execute(
            sa.text(
                "INSERT INTO t.projects (id, account_id, name, description) VALUES (1, 1, 'p', 'keep me')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO t.tasks (id, project_id, title) VALUES (1, 1, 'a long task title')"
            )
        )
        conn.execute(sa.text("INSERT INTO t.labels (task_id, name) VALUES (1, 'urgent')"))
    return "t"


def model_v1_with_shorter_title() -> sa.MetaData:
    metadata = model_v1()
    metadata.tables["tasks"].c.title.type = sa.String(5)
    return metadata


def test_drops_are_withheld_listed_and_logged_and_the_rows_survive(
    database_url: URL, engine: Engine, tenant_at_v2_with_rows: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tenant_sync")
    with TenantSync(database_url, model_v1()) as ts:
        report = ts.sync_all()
        again = ts.sync_all()

    (result,) = report.results
    assert sorted(result.withheld) == [
        "drop column projects.description",
        "drop column projects.priority",
        "drop table labels",
    ]
    assert result.operations == ["drop index ix_projects_name on projects"], (
        "the rest still applies"
    )
    assert result.withheld_classes == ["destructive"] * 3
    assert sorted(result.differences) == [
        f"{change} (withheld: destructive)" for change in sorted(result.withheld)
    ]
    assert result.status == "migrated" and not result.in_sync
    assert "still differs from the model: drop table labels (withheld: destructive)" in caplog.text
    assert again.results[0].withheld == result.withheld, "withheld again until allowed"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT description FROM t.projects")).scalar() == "keep me"
        assert conn.execute(sa.text("SELECT name FROM t.labels")).scalar() == "urgent"


def test_type_change_is_withheld_but_other_changes_of_the_same_column_apply(
    database_url: URL, engine: Engine, tenant_at_v2_with_rows: str
) -> None:
    metadata = model_v2()
    title = metadata.tables["tasks"].c.title
    title.type = sa.String(5)
    title.comment = "short title"
    with TenantSync(database_url, metadata) as ts:
        (result,) = ts.sync_all().results

    assert result.withheld == ["change type of tasks.title from TEXT to VARCHAR(5)"]
    assert result.operations == ["set comment on tasks.title"]
    assert columns(engine, "t", "tasks")["title"] == "text"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM t.tasks")).scalar() == "a long task title"


def test_allow_destructive_applies_drops(
    database_url: URL, engine: Engine, tenant_at_v2_with_rows: str
) -> None:
    with TenantSync(database_url, model_v1(), allow_destructive=True) as ts:
        (result,) = ts.sync_all().results
        again = ts.sync_all()
    assert result.status == "migrated" and result.withheld == []
    assert "drop table labels" in result.operations
    assert "labels" not in tables(engine, "t")
    assert "description" not in columns(engine, "t", "projects")
    assert again.results[0].status == "unchanged"


def test_a_change_withheld_in_many_tenants_is_warned_about_once_with_their_count(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"t{i:02d}" for i in range(12)]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v2()) as ts:
        ts.sync_all()
    caplog.set_level(logging.WARNING, logger="tenant_sync")
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()

    warnings = [r.getMessage() for r in caplog.records if "drop table labels" in r.getMessage()]
    assert warnings == [
        "still differs from the model: drop table labels (withheld: destructive),"
        " in 12 of 12 tenants (t00, t01, t02, ...)"
    ]
    assert all(
        r.levelno < logging.WARNING or "tenant t" not in r.getMessage() for r in caplog.records
    )
