"""After a sync a tenant equals the model as create_all builds it, where Alembic alone falls short.

Each test changes a model in a way Alembic autogenerate misses, misorders or gets
wrong, syncs, and compares the tenant's catalog with a schema built by
``metadata.create_all`` (``helpers.differences``).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import build_with_create_all, columns, differences, relfilenode
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def _orders(labels: tuple[str, ...]) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.Enum(*labels, name="order_state"), nullable=False),
    )
    sa.Table(
        "refunds",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.Enum(*labels, name="order_state"), nullable=True),
    )
    return metadata


def _sign_up(url: URL, metadata: sa.MetaData, names: list[str]) -> None:
    with TenantSync(url, metadata) as ts:
        for name in names:
            assert ts.sync_tenant(name).status == "migrated"


def test_enum_labels_added_to_the_model_are_added_in_its_order(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _orders(("open", "paid")), ["t1", "t2"])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t1.orders (state) VALUES ('paid')"))
    model = _orders(("draft", "open", "paid", "refunded"))
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["t1", "t2"], verify=True) as ts:
        planned_alone = {r.schema: r.operations for r in ts.sync_all(dry_run=True).results}
    with TenantSync(database_url, model, tenants=["t1", "t2"]) as ts:
        planned = ts.sync_all(dry_run=True)
        report = ts.sync_all()
        again = ts.sync_all()

    expected = [
        "add value 'draft' to enum order_state before 'open'",
        "add value 'refunded' to enum order_state after 'paid'",
    ]
    assert {r.schema: r.operations for r in planned.results} == planned_alone
    assert [r.operations for r in report.results] == [expected, expected]
    assert [r.status for r in again.results] == ["unchanged", "unchanged"]
    for name in ("t1", "t2"):
        assert differences(engine, name, "reference") == {}
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t1.orders (state) VALUES ('refunded'), ('draft')"))
        states = conn.execute(sa.text("SELECT state FROM t1.orders ORDER BY state")).scalars()
        assert list(states) == ["draft", "paid", "refunded"], "sorted in the model's order"


@pytest.mark.parametrize("allow_destructive", [False, True])
def test_enum_labels_the_model_dropped_or_reordered_are_reported_and_kept(
    database_url: URL, engine: Engine, allow_destructive: bool
) -> None:
    _sign_up(database_url, _orders(("open", "paid", "void")), ["dropped"])
    _sign_up(database_url, _orders(("open", "paid")), ["reordered"])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO dropped.orders (state) VALUES ('void')"))

    model = _orders(("paid", "open"))
    with TenantSync(database_url, model, allow_destructive=allow_destructive) as ts:
        report = ts.sync_all()

    dropped, reordered = report.get("dropped"), report.get("reordered")
    assert dropped is not None and reordered is not None
    assert dropped.operations == reordered.operations == []
    assert dropped.withheld == [
        "enum order_state has labels the model lacks ('void'): tenant ['open', 'paid', "
        "'void'], model ['paid', 'open']; tenant_sync does not remove or reorder enum labels"
    ]
    assert reordered.withheld == [
        "enum order_state has its labels in another order: tenant ['open', 'paid'], model "
        "['paid', 'open']; tenant_sync does not remove or reorder enum labels"
    ]
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT count(*) FROM dropped.orders WHERE state = 'void'"))
        assert kept.scalar_one() == 1


def _keyed_by_name() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "regions",
        metadata,
        sa.Column("name", sa.String(40), primary_key=True, unique=True),
        sa.Column("label", sa.Text),
    )
    return metadata


def test_a_unique_on_exactly_the_primary_key_is_not_added(
    database_url: URL, engine: Engine
) -> None:
    model = _keyed_by_name()
    _sign_up(database_url, model, ["signed_up"])
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model) as ts:
        report = ts.sync_all()
    with TenantSync(database_url, model, verify=True) as ts:
        verified = ts.sync_all()

    assert {r.schema: r.status for r in report.results} == {
        "reference": "unchanged",
        "signed_up": "unchanged",
    }
    assert all(r.status == "unchanged" for r in verified.results)
    assert differences(engine, "signed_up", "reference") == {}


def _mutual() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "teams",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "captain_id",
            sa.Integer,
            sa.ForeignKey("members.id", use_alter=True, name="teams_captain_id_fkey"),
        ),
    )
    sa.Table(
        "members",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
    )
    return metadata


def test_signup_adds_the_use_alter_foreign_keys_create_all_adds(
    database_url: URL, engine: Engine
) -> None:
    model = _mutual()
    build_with_create_all(engine, model, "reference")
    with TenantSync(database_url, model) as ts:
        first = ts.sync_tenant("first")
        second = ts.sync_tenant("second")  # from the kept plan, in one round trip
        after = ts.sync_all()

    assert "add foreign key teams_captain_id_fkey on teams (captain_id) -> members (id)" in (
        first.operations
    )
    assert first.operations[0] == "create schema first"
    assert first.operations[1:] == second.operations[1:]
    assert all(r.status == "unchanged" for r in after.results), after.results
    for name in ("first", "second"):
        assert differences(engine, name, "reference") == {}


def _shop(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    customers = sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    if version >= 2:
        customers.append_column(sa.Column("code", sa.String(20), unique=True))
        sa.Table(
            "accounts",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("customer_code", sa.String(20), sa.ForeignKey("customers.code")),
        )
        sa.Table(
            "ledgers",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        )
    return metadata


def test_a_new_table_referencing_a_column_the_same_change_adds_is_created_after_it(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _shop(1), ["shop"])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO shop.customers (name) VALUES ('acme')"))
    model = _shop(2)
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["shop"]) as ts:
        report = ts.sync_all()

    (result,) = report.results
    assert result.status == "migrated", result.error
    assert result.operations.index("create table accounts") > result.operations.index(
        "add column customers.code VARCHAR(20)"
    )
    assert result.operations.index("create table ledgers") > result.operations.index(
        "create table accounts"
    )
    assert differences(engine, "shop", "reference") == {}


def _indexed(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("accounts", metadata, sa.Column("id", sa.Integer, primary_key=True))
    invoices = sa.Table("invoices", metadata, sa.Column("id", sa.Integer, primary_key=True))
    if version >= 2:
        invoices.append_column(sa.Column("account_id", sa.ForeignKey("accounts.id"), index=True))
        invoices.append_column(sa.Column("number", sa.String(20), unique=True))
        invoices.append_column(sa.Column("ref", sa.String(20), unique=True, index=True))
    return metadata


def test_a_column_added_with_index_unique_and_foreign_key_gets_each_once(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _indexed(1), ["billing"])
    model = _indexed(2)
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["billing"]) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "migrated", result.error
    assert differences(engine, "billing", "reference") == {}


def _widths(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    wide = version >= 2
    sa.Table(
        "notes",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200 if wide else 50), nullable=False),
        sa.Column("body", sa.Text if wide else sa.String(500)),
        sa.Column("amount", sa.Numeric(14 if wide else 10, 2)),
        sa.Column("code", sa.String(5 if wide else 10)),
    )
    return metadata


def test_widening_a_column_applies_without_a_rewrite_and_narrowing_is_withheld(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _widths(1), ["notes_tenant"])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO notes_tenant.notes (title, body, amount, code)"
                " VALUES ('t', 'b', 12345678.90, 'abcdefghij')"
            )
        )
    before = relfilenode(engine, "notes_tenant", "notes")

    with TenantSync(database_url, _widths(2)) as ts:
        report = ts.sync_all()

    (result,) = report.results
    assert result.status == "migrated", result.error
    assert sorted(result.operations) == [
        "change type of notes.amount from NUMERIC(10, 2) to NUMERIC(14, 2)",
        "change type of notes.body from VARCHAR(500) to TEXT",
        "change type of notes.title from VARCHAR(50) to VARCHAR(200)",
    ]
    assert result.withheld == ["change type of notes.code from VARCHAR(10) to VARCHAR(5)"]
    assert relfilenode(engine, "notes_tenant", "notes") == before, "no table rewrite"
    assert columns(engine, "notes_tenant", "notes") == {
        "id": "integer",
        "title": "character varying(200)",
        "body": "text",
        "amount": "numeric(14,2)",
        "code": "character varying(10)",
    }


def _priced(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    products = sa.Table(
        "products",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("price", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer),
    )
    checks = {
        1: [
            sa.CheckConstraint("price >= 0", name="price_not_negative"),
            sa.CheckConstraint("stock < 1000", name="stock_capped"),
        ],
        2: [
            sa.CheckConstraint("price > 0", name="price_not_negative"),
            sa.CheckConstraint("stock >= 0", name="stock_not_negative"),
        ],
    }[version]
    for check in checks:
        products.append_constraint(check)
    if version >= 2:
        products.append_column(sa.Column("active", sa.Boolean(create_constraint=True)))
    return metadata


def test_check_constraints_are_added_changed_and_dropped_by_name_and_definition(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _priced(1), ["shop", "free"])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO shop.products (price, stock) VALUES (5, 3)"))
        conn.execute(sa.text("INSERT INTO free.products (price, stock) VALUES (0, 3), (0, 4)"))
    model = _priced(2)
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["shop", "free"]) as ts:
        dry = ts.sync_all(dry_run=True)
        report = ts.sync_all()
        again = ts.sync_all()
    with TenantSync(database_url, model, tenants=["shop"], verify=True) as ts:
        verified = ts.sync_all()

    shop, free = report.get("shop"), report.get("free")
    assert shop is not None and free is not None
    assert shop.status == "migrated", shop.error
    assert "drop check constraint stock_capped on products" in shop.operations
    assert "add check constraint price_not_negative on products: (price > 0)" in shop.operations
    assert differences(engine, "shop", "reference") == {}
    again_shop = again.get("shop")
    assert again_shop is not None and again_shop.status == "unchanged"
    assert verified.results[0].status == "unchanged"
    dry_free = dry.get("free")
    assert dry_free is not None and dry_free.status == "failed"
    assert dry_free.error == (
        "'add check constraint price_not_negative on products: (price > 0)' would fail:"
        " 2 rows that break it"
    )
    assert free.status == "failed", "the rows the model forbids are not silently kept"


def test_an_enum_label_renamed_in_the_model_and_declared_is_renamed_rows_and_all(
    database_url: URL, engine: Engine
) -> None:
    _sign_up(database_url, _orders(("open", "done")), ["t1"])
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t1.orders (state) VALUES ('done'), ('open')"))
    model = _orders(("open", "finished"))
    model.tables["orders"].c.state.info["renamed_labels"] = {"done": "finished"}
    build_with_create_all(engine, model, "reference")

    with TenantSync(database_url, model, tenants=["t1"]) as ts:
        report = ts.sync_all()
        again = ts.sync_all()

    result = report.get("t1")
    assert result is not None and result.status == "migrated", result
    assert result.operations == ["rename value 'done' of enum order_state to 'finished'"]
    assert result.classes == ["safe"]
    assert differences(engine, "t1", "reference") == {}
    assert [r.status for r in again.results] == ["unchanged"]
    with engine.connect() as conn:
        states = conn.execute(sa.text("SELECT state::text FROM t1.orders ORDER BY id")).scalars()
        assert list(states) == ["finished", "open"], "the rows keep their value, renamed"
