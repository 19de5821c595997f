"""Rows survive every sync: destructive changes are withheld, the rest keep the data.

Issue 3, points 7 and 8; extends ``tests/test_destructive.py`` (drops, a TEXT to
VARCHAR(5) change and ``allow_destructive``) with lower lengths and precisions, other
narrowing type changes, NOT NULL meeting NULLs, and a row-by-row checksum of every
table across a sync that makes every kind of non-destructive change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot, columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync

#: Rows per table: enough that a lost, truncated or rounded row would show.
ROWS = 300

#: The v2 columns of each tenant table, in the order the checksum reads them.
V2_COLUMNS = {
    "accounts": ["id", "email", "plan_id", "balance", "settings", "created_at"],
    "projects": ["id", "account_id", "name", "active", "description", "priority"],
    "tasks": ["id", "project_id", "title", "status", "estimate"],
    "labels": ["id", "task_id", "name", "status"],
}
V1_COLUMNS = {
    "accounts": V2_COLUMNS["accounts"],
    "projects": ["id", "account_id", "name", "active"],
    "tasks": V2_COLUMNS["tasks"],
}


def fill(engine: Engine, schema: str, rows: int = ROWS) -> None:
    """Varied rows in every table: long and non-ASCII text, JSON, precise numbers, NULLs."""
    statements = [
        f"INSERT INTO {schema}.accounts (id, email, plan_id, balance, settings, created_at)"
        " SELECT i, 'user' || i || '-' || repeat('é', i % 90) || '@example.com',"
        " CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % 2 END, (i * 1234567.89) % 9999999999.99,"
        " jsonb_build_object('n', i, 'tags', jsonb_build_array('a', i)),"
        " timestamptz '2024-01-01 10:00+00' + i * interval '1 hour 1 second'"
        " FROM generate_series(1, :rows) i",
        f"INSERT INTO {schema}.projects (id, account_id, name, active)"
        " SELECT i, i, 'project ' || i || ' ' || repeat('x', i % 80), i % 2 = 0"
        " FROM generate_series(1, :rows) i",
        f"INSERT INTO {schema}.tasks (id, project_id, title, status, estimate)"
        " SELECT i, i, 'task ' || i || ' ' || repeat('ü', i % 50),"
        f" (ARRAY['open', 'done', 'archived'])[1 + i % 3]::{schema}.task_status,"
        " CASE WHEN i % 4 = 0 THEN NULL ELSE (i * 7.3) % 99999.9 END"
        " FROM generate_series(1, :rows) i",
    ]
    if "labels" in tables(engine, schema):
        statements += [
            f"UPDATE {schema}.projects SET description = 'about ' || id WHERE id % 5 <> 0",
            f"UPDATE {schema}.projects SET priority = 'high' WHERE id % 7 = 0",
            f"INSERT INTO {schema}.labels (id, task_id, name, status)"
            f" SELECT i, i, 'label ' || i, CASE WHEN i % 2 = 0 THEN 'done'::{schema}.task_status END"
            " FROM generate_series(1, :rows) i",
        ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), {"rows": rows})


def checksums(
    engine: Engine, schema: str, columns_by_table: dict[str, list[str]]
) -> dict[str, tuple[int, str]]:
    """Table -> (row count, md5 of every row's text in key order), over the given columns."""
    sums: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for table, names in columns_by_table.items():
            row = conn.execute(
                sa.text(
                    f"SELECT count(*), md5(coalesce(string_agg(ROW({', '.join(names)})::text,"
                    f" '|' ORDER BY id), '')) FROM {schema}.{table}"
                )
            ).one()
            sums[table] = (row[0], row[1])
    return sums


def schema_snapshot(engine: Engine, schema: str) -> list[tuple[object, ...]]:
    """The part of the catalog snapshot that belongs to one schema."""
    return [row for row in catalog_snapshot(engine) if row[0] == schema]


@pytest.fixture
def tenant_at_v2(database_url: URL, engine: Engine) -> str:
    """Tenant ``t`` built at model v2, with ROWS rows in each of its tables."""
    make_schemas(engine, ["t"])
    with TenantSync(database_url, model_v2()) as ts:
        assert ts.sync_all().ok
    fill(engine, "t")
    return "t"


# -- 7. destructive changes are withheld, listed, and the rows survive ------------------


def _without_labels(metadata: sa.MetaData) -> None:
    metadata.remove(metadata.tables["labels"])


def _without_description(metadata: sa.MetaData) -> None:
    projects = metadata.tables["projects"]
    # The model as it would be with the column deleted from the class (no public API for it).
    projects._columns.remove(projects.c.description)


def _retype(table: str, column: str, type_: sa.types.TypeEngine[object]) -> Callable[..., None]:
    def change(metadata: sa.MetaData) -> None:
        metadata.tables[table].c[column].type = type_

    return change


DESTRUCTIVE = {
    "drop table": (_without_labels, "drop table labels"),
    "drop column": (_without_description, "drop column projects.description"),
    "shorter varchar": (
        _retype("accounts", "email", sa.String(50)),
        "change type of accounts.email from VARCHAR(200) to VARCHAR(50)",
    ),
    "lower numeric precision": (
        _retype("accounts", "balance", sa.Numeric(8, 1)),
        "change type of accounts.balance from NUMERIC(12, 2) to NUMERIC(8, 1)",
    ),
    "numeric to integer": (
        _retype("tasks", "estimate", sa.Integer()),
        "change type of tasks.estimate from NUMERIC(6, 1) to INTEGER",
    ),
    "bigint to integer": (
        _retype("tasks", "id", sa.Integer()),
        "change type of tasks.id from BIGINT to INTEGER",
    ),
    "text to short varchar": (
        _retype("projects", "name", sa.String(10)),
        "change type of projects.name from VARCHAR(100) to VARCHAR(10)",
    ),
    "timestamp to date": (
        _retype("accounts", "created_at", sa.Date()),
        "change type of accounts.created_at from TIMESTAMP WITH TIME ZONE to DATE",
    ),
    "jsonb to text": (
        _retype("accounts", "settings", sa.Text()),
        "change type of accounts.settings from JSONB to TEXT",
    ),
}


def test_every_destructive_change_is_withheld_and_listed_and_the_rows_survive(
    database_url: URL, engine: Engine, tenant_at_v2: str, caplog: pytest.LogCaptureFixture
) -> None:
    metadata = model_v2()
    for alter, _ in DESTRUCTIVE.values():
        alter(metadata)
    descriptions = sorted(description for _, description in DESTRUCTIVE.values())
    before_rows = checksums(engine, "t", V2_COLUMNS)
    before = catalog_snapshot(engine)
    caplog.set_level(logging.WARNING, logger="tenant_sync")

    with TenantSync(database_url, metadata) as ts:
        dry = ts.sync_all(dry_run=True)
        report = ts.sync_all()
        again = ts.sync_all()

    (result,) = report.results
    assert result.status == "unchanged", result
    assert sorted(result.withheld) == descriptions
    assert result.operations == [] and result.sql == []
    assert sorted(dry.results[0].withheld) == descriptions, "a dry run lists them too"
    assert sorted(report.to_dict()["results"][0]["withheld"]) == descriptions, "and the JSON"
    assert sorted(again.results[0].withheld) == descriptions, "withheld again until allowed"
    for description in descriptions:
        assert (
            f"still differs from the model: {description} (withheld: destructive), in 1 of 1"
            in (caplog.text)
        )
    assert catalog_snapshot(engine) == before
    assert checksums(engine, "t", V2_COLUMNS) == before_rows
    assert before_rows["accounts"][0] == ROWS


def test_not_null_on_a_column_holding_nulls_fails_that_tenant_clearly(
    database_url: URL, engine: Engine, tenant_at_v2: str
) -> None:
    make_schemas(engine, ["u"])
    with TenantSync(database_url, model_v2(), tenants=["u"]) as ts:
        ts.sync_all()
    fill(engine, "u", rows=20)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE u.tasks SET estimate = 1 WHERE estimate IS NULL"))
    metadata = model_v2()
    metadata.tables["tasks"].c.estimate.nullable = False
    before_t = schema_snapshot(engine, "t")
    rows_t = checksums(engine, "t", V2_COLUMNS)

    with TenantSync(database_url, metadata, tenants=["t", "u"]) as ts:
        report = ts.sync_all()

    failed, migrated = report.get("t"), report.get("u")
    assert failed is not None and failed.status == "failed"
    assert migrated is not None and migrated.status == "migrated", "other tenants go on"
    assert migrated.operations == ["set NOT NULL on tasks.estimate"]
    error = failed.error or ""
    assert error.startswith("while running 'set NOT NULL on tasks.estimate': NotNullViolation:")
    assert 'column "estimate" of relation "tasks" contains null values' in error
    assert "fill the rows first" in error
    assert "\n" not in error
    assert schema_snapshot(engine, "t") == before_t, "the tenant is untouched"
    assert checksums(engine, "t", V2_COLUMNS) == rows_t


def _model_with_required_owner() -> sa.MetaData:
    metadata = model_v2()
    metadata.tables["projects"].append_column(sa.Column("owner", sa.Text, nullable=False))
    return metadata


def test_not_null_column_without_default_on_a_table_with_rows_fails_and_leaves_the_tenant(
    database_url: URL, engine: Engine, tenant_at_v2: str
) -> None:
    make_schemas(engine, ["empty"])
    before_t = schema_snapshot(engine, "t")
    rows_t = checksums(engine, "t", V2_COLUMNS)

    with TenantSync(database_url, _model_with_required_owner(), tenants=["t", "empty"]) as ts:
        report = ts.sync_all()

    failed, built = report.get("t"), report.get("empty")
    assert built is not None and built.status == "migrated", "an empty table takes the column"
    assert "owner" in columns(engine, "empty", "projects")
    assert failed is not None and failed.status == "failed" and failed.attempts == 1
    error = failed.error or ""
    assert error.startswith("while running 'add column projects.owner TEXT NOT NULL'"), error
    assert 'column "owner" of relation "projects" contains null values' in error
    assert "server_default" in error, "says how to fix it"
    assert schema_snapshot(engine, "t") == before_t, "the tenant is untouched"
    assert checksums(engine, "t", V2_COLUMNS) == rows_t


def test_not_null_column_without_default_message_says_the_table_has_rows_and_how_to_fix(
    database_url: URL, engine: Engine, tenant_at_v2: str
) -> None:
    with TenantSync(database_url, _model_with_required_owner()) as ts:
        (result,) = ts.sync_all().results
    error = result.error or ""
    assert "projects has rows" in error
    assert "server_default" in error and "add it nullable, fill it" in error
    assert "fill the rows first" not in error


# -- 8. every non-destructive change keeps every row ------------------------------------


def model_v3() -> sa.MetaData:
    """v2 plus one of each non-destructive change tenant_sync can make to a table with rows."""
    metadata = model_v2()
    accounts, projects, tasks = (metadata.tables[n] for n in ("accounts", "projects", "tasks"))
    accounts.append_column(sa.Column("nickname", sa.String(40)))  # nullable column
    accounts.append_column(
        sa.Column("joined_on", sa.Date, nullable=False, server_default=sa.func.current_date())
    )
    accounts.c.balance.server_default = sa.schema.DefaultClause("1")  # new default
    accounts.comment = "customer accounts, v3"  # table comment
    projects.c.name.nullable = True  # drop NOT NULL
    projects.c.name.comment = None  # drop column comment
    tasks.c.title.comment = "what to do"  # column comment
    tasks.append_column(
        sa.Column("score", sa.Integer, nullable=False, server_default="0")  # NOT NULL + default
    )
    tasks.append_column(sa.Column("owner_id", sa.Integer, sa.ForeignKey("accounts.id")))
    tasks.append_constraint(sa.UniqueConstraint("project_id", "title", name="uq_tasks_title"))
    sa.Index("ix_tasks_title", tasks.c.title)
    sa.Index("ix_accounts_lower_email", sa.func.lower(accounts.c.email))
    # A dropped index and constraint lose no rows: the model no longer has them.
    tasks.indexes.remove(next(i for i in tasks.indexes if i.name == "ix_tasks_project_status"))
    projects.constraints.remove(
        next(c for c in projects.constraints if c.name == "uq_projects_account_name")
    )
    sa.Table(
        "comments",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    return metadata


@pytest.mark.parametrize(
    ("start", "target", "columns_before"),
    [(model_v1, model_v2, V1_COLUMNS), (model_v2, model_v3, V2_COLUMNS)],
    ids=["v1-to-v2", "v2-to-v3"],
)
def test_rows_written_before_a_sync_are_all_there_after_it(
    database_url: URL,
    engine: Engine,
    start: Callable[[], sa.MetaData],
    target: Callable[[], sa.MetaData],
    columns_before: dict[str, list[str]],
) -> None:
    names = ["t1", "t2", "t3"]
    make_schemas(engine, names)
    with TenantSync(database_url, start()) as ts:
        assert ts.sync_all().ok
    for name in names:
        fill(engine, name)
    before = {name: checksums(engine, name, columns_before) for name in names}

    with TenantSync(database_url, target(), workers=3) as ts:
        report = ts.sync_all()
        again = ts.sync_all()

    assert report.ok and report.counts["migrated"] == len(names), report.failed()
    assert all(result.withheld == [] for result in report.results), "nothing destructive"
    assert again.counts["unchanged"] == len(names), "converged"
    for name in names:
        assert checksums(engine, name, columns_before) == before[name], name
        assert before[name]["accounts"][0] == ROWS
    operations = report.results[0].operations
    if target is model_v3:
        assert len(operations) >= 14, operations
        with engine.connect() as conn:
            added = conn.execute(
                sa.text("SELECT count(*) FROM t1.tasks WHERE score = 0 AND owner_id IS NULL")
            ).scalar()
            nullable = conn.execute(
                sa.text(
                    "SELECT is_nullable FROM information_schema.columns"
                    " WHERE table_schema = 't1' AND table_name = 'projects' AND column_name = 'name'"
                )
            ).scalar()
        assert added == ROWS, "existing rows took the new columns' defaults"
        assert nullable == "YES"
