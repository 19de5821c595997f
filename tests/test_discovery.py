"""Which schemas are tenants: all, a LIKE pattern, a list, a callable; and bad lists."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import make_schemas
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import ConfigurationError, DiscoveryError, TenantSync


@pytest.fixture
def schemas(engine: Engine) -> list[str]:
    names = ["tenant_a", "tenant_b", "other", "shared"]
    make_schemas(engine, names)
    return names


def shared_model() -> sa.MetaData:
    metadata = model_v1()
    sa.Table("settings", metadata, sa.Column("key", sa.Text, primary_key=True), schema="shared")
    return metadata


def test_default_lists_every_schema_but_system_and_shared_ones(
    database_url: URL, schemas: list[str]
) -> None:
    with TenantSync(database_url, shared_model()) as ts:
        assert ts.list_tenants() == ["other", "tenant_a", "tenant_b"]


def test_a_schema_an_extension_owns_is_never_a_tenant_unless_named(
    database_url: URL, engine: Engine, schemas: list[str]
) -> None:
    # Extensions such as pg_cron or Citus own schemas of their own (cron, citus): empty,
    # such a schema would look like a new tenant and get the model's tables.
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA tenant_ext"))
        conn.execute(sa.text("ALTER EXTENSION plpgsql ADD SCHEMA tenant_ext"))
    try:
        for tenants in (None, "tenant%"):
            with TenantSync(database_url, model_v1(), tenants=tenants) as ts:
                assert "tenant_ext" not in ts.list_tenants(), tenants
                report = ts.sync_all()
            assert report.get("tenant_ext") is None
        with engine.connect() as conn:
            relations = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant_ext'::regnamespace"
                )
            )
            assert relations.scalar_one() == 0
        with TenantSync(database_url, model_v1(), tenants=["tenant_ext"]) as ts:
            assert ts.list_tenants() == ["tenant_ext"]  # named: the user's call
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER EXTENSION plpgsql DROP SCHEMA tenant_ext"))


def test_pattern_selects_by_like(database_url: URL, schemas: list[str]) -> None:
    with TenantSync(database_url, model_v1(), tenants="tenant_%") as ts:
        assert ts.list_tenants() == ["tenant_a", "tenant_b"]


def test_pattern_matching_nothing_gives_an_empty_report_that_says_so(
    database_url: URL, schemas: list[str]
) -> None:
    with TenantSync(database_url, model_v1(), tenants="nobody_%") as ts:
        report = ts.sync_all()
    assert report.results == [] and report.ok
    assert report.note is not None and "nobody_%" in report.note


def test_list_is_taken_as_given(database_url: URL, schemas: list[str]) -> None:
    with TenantSync(database_url, model_v1(), tenants=["tenant_b", "other"]) as ts:
        assert ts.list_tenants() == ["tenant_b", "other"]


def test_callable_reads_tenants_from_a_table(
    database_url: URL, engine: Engine, schemas: list[str]
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE public.customers (schema_name text, active bool)"))
        conn.execute(
            sa.text("INSERT INTO public.customers VALUES ('tenant_a', true), ('tenant_b', false)")
        )

    def active_customers(conn: sa.Connection) -> list[str]:
        query = sa.text("SELECT schema_name FROM public.customers WHERE active")
        return list(conn.execute(query).scalars())

    with TenantSync(database_url, model_v1(), tenants=active_customers) as ts:
        assert ts.list_tenants() == ["tenant_a"]
        assert [r.schema for r in ts.sync_all().results] == ["tenant_a"]


def test_callable_that_raises_is_a_discovery_error(database_url: URL) -> None:
    def broken(conn: sa.Connection) -> list[str]:
        raise RuntimeError("tenant registry is down")

    with (
        TenantSync(database_url, model_v1(), tenants=broken) as ts,
        pytest.raises(DiscoveryError, match="tenant registry is down"),
    ):
        ts.sync_all()


@pytest.mark.parametrize(
    ("tenants", "message"),
    [
        (["a", "b", "a"], "duplicate tenant names: 'a'"),
        (["x" * 64], "64 bytes; PostgreSQL allows at most 63"),
        ([""], "tenant name is empty"),
        (["public"], "system schema"),
        (["pg_toast"], "system schema"),
        (["shared"], "the model names tenant schema 'shared' explicitly"),
    ],
)
def test_bad_tenant_lists_are_refused_with_a_clear_error(
    database_url: URL, engine: Engine, tenants: list[str], message: str
) -> None:
    before = _schemas(engine)
    with (
        TenantSync(database_url, shared_model(), tenants=tenants) as ts,
        pytest.raises(ConfigurationError, match=message),
    ):
        ts.sync_all()
    assert _schemas(engine) == before


def test_listed_tenant_that_does_not_exist_fails_and_nothing_is_created(
    database_url: URL, engine: Engine, schemas: list[str]
) -> None:
    with TenantSync(database_url, model_v1(), tenants=["tenant_a", "ghost"]) as ts:
        report = ts.sync_all()
    assert report.get("tenant_a").status == "migrated"  # type: ignore[union-attr]
    ghost = report.get("ghost")
    assert ghost is not None and ghost.status == "failed"
    assert ghost.error is not None and "schema 'ghost' does not exist" in ghost.error
    assert "ghost" not in _schemas(engine)


def _schemas(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())


def test_pattern_matching_a_schema_the_model_names_explicitly_is_refused(
    database_url: URL, schemas: list[str]
) -> None:
    metadata = model_v1()
    sa.Table("audit", metadata, sa.Column("id", sa.Integer, primary_key=True), schema="tenant_b")
    with (
        TenantSync(database_url, metadata, tenants="tenant_%") as ts,
        pytest.raises(ConfigurationError, match="names tenant schema 'tenant_b' explicitly"),
    ):
        ts.sync_all()
