"""A table renamed in the model with ``info={"renamed_from": ...}`` is renamed, rows kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import build_with_create_all, differences, tables
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def _shop(version: int) -> sa.MetaData:
    """v1: customers; v2: the same table as clients, with a new column, orders pointing at it."""
    metadata = sa.MetaData()
    name = "clients" if version >= 2 else "customers"
    info = {"renamed_from": "customers"} if version >= 2 else {}
    extra = [sa.Column("note", sa.Text)] if version >= 2 else []
    sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, index=True),
        *extra,
        info=info,
    )
    sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey(f"{name}.id"), nullable=False),
    )
    return metadata


def _rename(engine: Engine) -> str:
    """The rename's words: PostgreSQL 18 and later name NOT NULL constraints too."""
    with engine.connect() as conn:
        version = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
    not_null = (
        " constraint customers_email_not_null, constraint customers_id_not_null,"
        if version >= 180000
        else ""
    )
    return (
        "rename table customers to clients (and its sequence customers_id_seq,"
        f"{not_null} constraint customers_email_key, constraint customers_pkey,"
        " index ix_customers_name)"
    )


def _with_rows(engine: Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {schema}.customers (email) VALUES ('a@x'), ('b@x')"))
        conn.execute(sa.text(f"INSERT INTO {schema}.orders (customer_id) VALUES (1), (2)"))


def test_a_declared_table_rename_keeps_the_rows_and_equals_create_all(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, _shop(1)) as ts:
        ts.sync_tenant("t_old")
    _with_rows(engine, "t_old")
    model = _shop(2)
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["t_old"]) as ts:
        planned = ts.sync_all(dry_run=True).get("t_old")
        assert tables(engine, "t_old") >= {"customers"}, "a dry run renames nothing"
        result = ts.sync_all().get("t_old")
        new = ts.sync_tenant("t_new")

    assert planned is not None and result is not None
    assert planned.operations == [_rename(engine), "add column clients.note TEXT"], planned
    assert result.status == "migrated", result
    assert result.operations == planned.operations and result.classes == ["safe", "safe"]
    assert result.differences == [] and result.withheld == []
    assert differences(engine, "t_old", "reference") == {}
    assert new.status == "migrated" and differences(engine, "t_new", "reference") == {}
    with engine.begin() as conn:
        # The serial default uses the renamed sequence, which goes on where it was.
        conn.execute(sa.text("INSERT INTO t_old.clients (email) VALUES ('c@x')"))
        rows = conn.execute(sa.text("SELECT id, email FROM t_old.clients ORDER BY id")).all()
        referenced = conn.execute(sa.text("SELECT count(*) FROM t_old.orders")).scalar_one()
    assert [tuple(row) for row in rows] == [(1, "a@x"), (2, "b@x"), (3, "c@x")]
    assert referenced == 2


@pytest.mark.parametrize("allow_destructive", [False, True])
def test_both_tables_present_drops_neither_and_counts_their_rows(
    database_url: URL, engine: Engine, allow_destructive: bool
) -> None:
    with TenantSync(database_url, _shop(1)) as ts:
        ts.sync_tenant("t_both")
        ts.sync_tenant("t_both_empty")
    _with_rows(engine, "t_both")
    with engine.begin() as conn:
        for schema in ("t_both", "t_both_empty"):
            conn.execute(sa.text(f"CREATE TABLE {schema}.clients (LIKE {schema}.customers)"))
        conn.execute(sa.text("INSERT INTO t_both.clients SELECT * FROM t_both.customers LIMIT 1"))

    with TenantSync(database_url, _shop(2), allow_destructive=allow_destructive) as ts:
        planned = ts.sync_all(dry_run=True).get("t_both")
        report = ts.sync_all()
    result, empty = report.get("t_both"), report.get("t_both_empty")

    conflict = (
        "rename table customers to clients: both tables exist (customers holds 2 rows,"
        " clients 1); neither is dropped (move what customers holds, then drop it yourself)"
        " (withheld: destructive)"
    )
    assert planned is not None and result is not None and empty is not None
    assert conflict in planned.differences and conflict in result.differences, result
    assert not result.in_sync
    # Both tenants have the same shape; each says what it holds itself.
    assert "(customers holds 0 rows, clients 0)" in " ".join(empty.differences), empty
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM t_both.customers")).scalar_one()
    assert kept == 2, "the old table and its rows are still there"
    assert {"customers", "clients"} <= tables(engine, "t_both")


def test_drift_says_when_a_table_rename_hint_is_no_longer_needed(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with TenantSync(database_url, _shop(1)) as ts:
        ts.sync_tenant("t1")
    hint = "the rename hint on clients (renamed_from='customers') is no longer needed"
    with TenantSync(database_url, _shop(2)) as ts:
        ts.drift()
        assert hint not in caplog.text, "t1 still has the old table"
        ts.sync_all()
        caplog.clear()
        ts.drift()
    assert hint in caplog.text
