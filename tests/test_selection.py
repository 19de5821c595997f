"""Choosing tenants safely: names or LIKE patterns, exclusions, and schemas that are no tenant.

A schema that holds tables, none of them the model's (``analytics`` beside the tenants),
is left alone and reported skipped unless it was named; an empty schema is a tenant.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot, make_schemas, tables
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import ConfigurationError, TenantSync
from tenant_sync.discovery import SchemaItems, like_regex

NOT_A_TENANT = (
    "holds 2 tables the model does not know (events, sessions) and none of the model's"
    " tables; not treated as a tenant (name it in --tenants / tenants= to sync it)"
)


@pytest.fixture
def analytics(engine: Engine) -> None:
    """Two empty tenants, ``tenants_backup``, and ``analytics`` with tables (and rows) of its own."""
    make_schemas(engine, ["tenant_acme", "tenant_globex", "tenants_backup", "analytics"])
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE analytics.events (id int PRIMARY KEY, kind text)"))
        conn.execute(sa.text("CREATE VIEW analytics.sessions AS SELECT id FROM analytics.events"))
        conn.execute(sa.text("INSERT INTO analytics.events VALUES (1, 'signup'), (2, 'login')"))


def analytics_state(engine: Engine) -> tuple[set[str], list[tuple[object, ...]]]:
    """The tables of ``analytics`` and the rows of its own table."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, kind FROM analytics.events ORDER BY id")).all()
    return tables(engine, "analytics"), [tuple(row) for row in rows]


@pytest.mark.parametrize("verify", [False, True], ids=["by-shape", "verify"])
@pytest.mark.parametrize("allow_destructive", [False, True], ids=["default", "destructive"])
def test_a_schema_with_only_tables_of_its_own_is_left_alone_and_reported_skipped(
    database_url: URL,
    engine: Engine,
    analytics: None,
    caplog: pytest.LogCaptureFixture,
    verify: bool,
    allow_destructive: bool,
) -> None:
    before = analytics_state(engine)
    with TenantSync(
        database_url, model_v1(), allow_destructive=allow_destructive, verify=verify
    ) as ts:
        drifts = ts.drift()
        report = ts.sync_all()

    assert analytics_state(engine) == before == ({"events"}, [(1, "signup"), (2, "login")])
    result = report.get("analytics")
    assert result is not None and result.status == "skipped"
    assert result.error == NOT_A_TENANT and result.operations == [] and result.sql == []
    assert f"schema analytics {NOT_A_TENANT}" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    ]
    # Empty schemas are tenants (that is how signups look), tenants_backup too here.
    for name in ("tenant_acme", "tenant_globex", "tenants_backup"):
        assert report.get(name).status == "migrated"  # type: ignore[union-attr]
        assert {"accounts", "projects", "tasks"} <= tables(engine, name)
    assert all("analytics" not in drift.tenants for drift in drifts)


def test_a_dry_run_reports_it_skipped_too(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    before = catalog_snapshot(engine)
    with TenantSync(database_url, model_v1()) as ts:
        report = ts.sync_all(dry_run=True)
    assert report.get("analytics").status == "skipped"  # type: ignore[union-attr]
    assert report.get("tenant_acme").status == "planned"  # type: ignore[union-attr]
    assert catalog_snapshot(engine) == before


@pytest.mark.parametrize(
    "tenants",
    [["analytics"], "analytics", SchemaItems(("tenant\\_%", "analytics"))],
    ids=["list", "string", "items"],
)
def test_named_exactly_it_is_synced(
    database_url: URL, engine: Engine, analytics: None, tenants: object
) -> None:
    with TenantSync(database_url, model_v1(), tenants=tenants) as ts:  # type: ignore[arg-type]
        selection = ts.select_tenants()
        report = ts.sync_all()
    assert dict(selection.not_tenants) == {}
    assert report.get("analytics").status == "migrated"  # type: ignore[union-attr]
    assert {"accounts", "events", "projects", "tasks"} <= tables(engine, "analytics")
    assert analytics_state(engine)[1] == [(1, "signup"), (2, "login")]


def test_matched_by_a_pattern_it_is_still_left_alone(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    with TenantSync(database_url, model_v1(), tenants="%a%") as ts:
        report = ts.sync_all()
    assert report.get("analytics").status == "skipped"  # type: ignore[union-attr]
    assert tables(engine, "analytics") == {"events"}


def test_a_tenant_with_one_model_table_is_a_tenant(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE analytics.accounts (id int PRIMARY KEY)"))
    with TenantSync(database_url, model_v1()) as ts:
        assert ts.select_tenants().not_tenants == {}
        assert ts.sync_all().get("analytics").status == "migrated"  # type: ignore[union-attr]


def test_the_escaped_pattern_leaves_tenants_backup_alone(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    with TenantSync(database_url, model_v1(), tenants="tenant\\_%") as ts:
        report = ts.sync_all()
    assert [r.schema for r in report.results] == ["tenant_acme", "tenant_globex"]
    assert tables(engine, "tenants_backup") == set()
    with TenantSync(database_url, model_v1(), tenants="tenant_%") as ts:
        assert "tenants_backup" in ts.list_tenants(), "_ is a wildcard"


def test_a_string_that_is_a_schemas_name_selects_it_alone(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["tenant_a", "tenantxa"])
    with TenantSync(database_url, model_v1(), tenants="tenant_a") as ts:
        (choice,) = ts.select_tenants().tenants
    assert (choice.schema, choice.rule, choice.explicit) == ("tenant_a", "name", True)
    with TenantSync(database_url, model_v1(), tenants="tenant_b") as ts:
        assert ts.list_tenants() == [], "no such schema: a pattern, which matches nothing"


def test_each_schema_carries_the_rule_that_selected_it(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    items = SchemaItems(("tenant\\_%", "analytics", "tenant_acme", "nobody_%"))
    with TenantSync(database_url, model_v1(), tenants=items) as ts:
        rules = [(c.schema, c.rule, c.item) for c in ts.select_tenants().tenants]
    # In the items' order; a name wins over a pattern that matched first; each schema once.
    assert rules == [
        ("tenant_acme", "name", None),
        ("tenant_globex", "pattern", "tenant\\_%"),
        ("analytics", "name", None),
    ]
    with TenantSync(database_url, model_v1(), tenants=lambda conn: ["tenant_acme"]) as ts:
        (choice,) = ts.select_tenants().tenants
    assert (choice.rule, choice.explicit) == ("callable", True)


@pytest.mark.parametrize(
    ("exclude", "left"),
    [
        ("analytics", ["tenant_acme", "tenant_globex", "tenants_backup"]),
        (["analytics", "tenants\\_%"], ["tenant_acme", "tenant_globex"]),
        (("%globex", "tenant_acme"), ["analytics", "tenants_backup"]),
    ],
    ids=["name", "name-and-pattern", "tuple"],
)
def test_exclude_leaves_out_what_it_names_or_matches(
    database_url: URL, engine: Engine, analytics: None, exclude: object, left: list[str]
) -> None:
    with TenantSync(database_url, model_v1(), exclude=exclude) as ts:  # type: ignore[arg-type]
        selection = ts.select_tenants()
        report = ts.sync_all()
    assert selection.names == left == [r.schema for r in report.results]
    gone = {e.schema: e.item for e in selection.excluded}
    assert set(gone) == {"analytics", "tenant_acme", "tenant_globex", "tenants_backup"} - set(left)
    for name in gone:
        assert "accounts" not in tables(engine, name)


def test_exclude_applies_to_a_list_and_to_a_pattern(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    listed = ["tenant_acme", "tenant_globex", "ghost"]
    with TenantSync(database_url, model_v1(), tenants=listed, exclude="ghost") as ts:
        assert ts.list_tenants() == ["tenant_acme", "tenant_globex"]
    with TenantSync(database_url, model_v1(), tenants="tenant%", exclude="%_backup") as ts:
        assert ts.list_tenants() == ["tenant_acme", "tenant_globex"]


def test_excluding_everything_says_so_in_the_note(
    database_url: URL, engine: Engine, analytics: None
) -> None:
    with TenantSync(database_url, model_v1(), tenants="tenant\\_%", exclude="%") as ts:
        report = ts.sync_all()
    assert report.results == []
    assert report.note == "no tenant schema matched 'tenant\\\\_%' (2 excluded)"


def test_exclude_removes_a_shared_schema_a_pattern_would_clash_with(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["tenant_a", "shared"])
    metadata = model_v1()
    sa.Table("settings", metadata, sa.Column("key", sa.Text, primary_key=True), schema="shared")
    with (
        TenantSync(database_url, metadata, tenants="%") as ts,
        pytest.raises(ConfigurationError, match="names tenant schema 'shared' explicitly"),
    ):
        ts.list_tenants()
    with TenantSync(database_url, metadata, tenants="%", exclude="shared") as ts:
        assert ts.list_tenants() == ["tenant_a"]


@pytest.mark.parametrize(
    ("tenants", "exclude", "message"),
    [
        ("", None, "tenants: an item is empty"),
        ("tenant\\", None, "tenants: LIKE pattern 'tenant\\' ends with the escape character"),
        ("public", None, "'public' is a system schema, not a tenant"),
        ("a\x00b", None, "contains a NUL character"),
        (None, [""], "exclude: an item is empty"),
        (None, ["x\\"], "exclude: LIKE pattern 'x\\' ends with the escape character"),
        (None, 5, "exclude must be None, a schema name or LIKE pattern, or a list"),
        (None, [5], "exclude items must be strings, got 5"),
    ],
    ids=[
        "empty",
        "trailing-escape",
        "system",
        "nul",
        "empty-exclude",
        "exclude-escape",
        "exclude-type",
        "exclude-item",
    ],
)
def test_bad_items_are_one_configuration_error(
    database_url: URL, engine: Engine, tenants: object, exclude: object, message: str
) -> None:
    before = catalog_snapshot(engine)
    with (
        pytest.raises(ConfigurationError) as caught,
        TenantSync(database_url, model_v1(), tenants=tenants, exclude=exclude) as ts,  # type: ignore[arg-type]
    ):
        ts.sync_all()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert catalog_snapshot(engine) == before


NAMES = ["tenant_a", "tenants_backup", "tenantxa", "a%b", "axb", "a\\b", "Tenant_A", "t\nx", ""]
PATTERNS = [
    "tenant\\_%",
    "tenant_%",
    "%",
    "_",
    "a\\%b",
    "a%b",
    "a\\\\b",
    "a\\b",
    "tenant_a",
    "%A",
    "t_x",
    "%\\%%",
]


def test_like_regex_matches_what_postgresql_like_matches(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT p, n, CAST(n AS name) LIKE p FROM unnest(CAST(:names AS text[])) n,"
                " unnest(CAST(:patterns AS text[])) p"
            ),
            {"names": NAMES, "patterns": PATTERNS},
        ).all()
    assert len(rows) == len(NAMES) * len(PATTERNS)
    for pattern, name, matches in rows:
        assert (like_regex(pattern).fullmatch(name) is not None) == matches, (pattern, name)
