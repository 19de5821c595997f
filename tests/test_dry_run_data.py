"""A dry run asks each tenant's data whether a data-dependent change would fail there.

The sync that follows then fails exactly those tenants, untouched, and their results
still show the operations they tried and the SQL up to the statement that failed.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def _billing(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    v2 = version >= 2
    sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=not v2),
        sa.Column("email", sa.Text, unique=v2),
    )
    invoices = sa.Table(
        "invoices",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id") if v2 else None),
        sa.Column("number", sa.Text),
    )
    if v2:
        sa.Index("ix_invoices_number", invoices.c.number, unique=True)
    notes = sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True))
    if v2:
        notes.append_column(sa.Column("body", sa.Text, nullable=False))
        sa.Table("payments", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


# Each tenant holds rows that block one change of v2 (``clean`` blocks none).
BLOCKERS = {
    "clean": "INSERT INTO clean.customers (name, email) VALUES ('a', 'a@x')",
    "nulls": "INSERT INTO nulls.customers (name) VALUES (NULL), (NULL), ('c')",
    "dupes": "INSERT INTO dupes.customers (name, email) VALUES ('a', 'same'), ('b', 'same')",
    "orphans": "INSERT INTO orphans.invoices (customer_id) VALUES (7), (8), (NULL)",
    "noted": "INSERT INTO noted.notes DEFAULT VALUES",
    "numbered": "INSERT INTO numbered.invoices (number) VALUES ('7'), ('7'), (NULL), (NULL)",
    "viewed": "CREATE VIEW viewed.payments AS SELECT 1 AS id",
}

EXPECTED_ERRORS = {
    "nulls": "'set NOT NULL on customers.name' would fail: 2 rows with NULL",
    "dupes": "'add unique constraint on customers (email)' would fail: 1 value held by"
    " more than one row",
    "orphans": "'add foreign key on invoices (customer_id) -> customers (id)' would fail:"
    " 2 rows with no match in customers",
    "noted": "'add column notes.body TEXT NOT NULL' would fail: 1 row, and no default",
    "numbered": "'create unique index ix_invoices_number on invoices (number)' would fail:"
    " 1 value held by more than one row",
    "viewed": "'create table payments' would fail: 1 relation named payments already there",
}


@pytest.fixture
def tenants(database_url: URL, engine: Engine) -> list[str]:
    with TenantSync(database_url, _billing(1)) as ts:
        for name in BLOCKERS:
            assert ts.sync_tenant(name).status == "migrated"
    with engine.begin() as conn:
        for statement in BLOCKERS.values():
            conn.execute(sa.text(statement))
    return list(BLOCKERS)


@pytest.mark.parametrize("verify", [False, True], ids=["by shape", "verify"])
def test_the_dry_run_names_each_tenant_whose_rows_would_fail_and_the_sync_fails_those(
    database_url: URL, engine: Engine, tenants: list[str], verify: bool
) -> None:
    before = catalog_snapshot(engine)
    with TenantSync(database_url, _billing(2), verify=verify) as ts:
        dry = ts.sync_all(dry_run=True)
        assert catalog_snapshot(engine) == before, "the dry run changed nothing"
        real = ts.sync_all()

    assert {r.schema: r.error for r in dry.results if r.status == "failed"} == EXPECTED_ERRORS
    assert dry.get("clean") is not None and dry.get("clean").status == "planned"  # type: ignore[union-attr]
    failed = {r.schema for r in real.results if r.status == "failed"}
    assert failed == set(EXPECTED_ERRORS), "the sync fails exactly the tenants the dry run named"
    assert real.get("clean").status == "migrated"  # type: ignore[union-attr]
    for result in real.failed():
        assert "set NOT NULL on customers.name" in result.operations, "what it tried is kept"
        assert result.sql, result
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM nulls.customers WHERE name IS NULL"))
        assert left.scalar_one() == 2, "rolled back, rows untouched"


def test_a_failed_tenant_keeps_the_sql_it_ran_up_to_the_failing_statement(
    database_url: URL, engine: Engine, tenants: list[str]
) -> None:
    with TenantSync(database_url, _billing(2), tenants=["nulls"]) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "failed"
    assert result.error is not None and "set NOT NULL on customers.name" in result.error
    assert result.sql[-1] == "ALTER TABLE customers ALTER COLUMN name SET NOT NULL"
    assert len(result.operations) > 1
