"""Least privilege: a plain role that owns the tenant schemas can do everything tenant_sync does.

Issue 3, point 11.  The role has no superuser, CREATEDB or CREATEROLE; it has CREATE
on the database (to create tenant schemas at signup), owns the tenant schemas, and
may read and reference the shared ``public.plans``.  What it is not allowed to do
fails that tenant with PostgreSQL's own "permission denied" naming the object,
and the other tenants go on.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot, make_schemas, tables
from models import V2_TENANT_TABLES, model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantSync


@pytest.fixture
def owner(admin_engine: Engine, database_url: URL, engine: Engine) -> Iterator[str]:
    """A new LOGIN role with CREATE on the test database and the use of public.plans."""
    role = f"ts_owner_{uuid.uuid4().hex[:8]}"
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'GRANT CREATE ON DATABASE "{database_url.database}" TO {role}'))
            conn.execute(sa.text(f"GRANT SELECT, REFERENCES ON public.plans TO {role}"))
        yield role
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role} CASCADE"))
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))


def owned_schemas(engine: Engine, role: str, names: list[str]) -> None:
    with engine.begin() as conn:
        for name in names:
            conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {role}"))


def owners(engine: Engine, schema: str) -> set[str]:
    """The owners of the schema and of every relation and type in it."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text(
                    "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"
                    " UNION SELECT pg_get_userbyid(c.relowner) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s"
                    " UNION SELECT pg_get_userbyid(t.typowner) FROM pg_type t"
                    " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = :s"
                ),
                {"s": schema},
            ).scalars()
        )


def test_role_that_owns_the_tenants_syncs_and_signs_up_without_superuser(
    database_url: URL, engine: Engine, owner: str
) -> None:
    with engine.connect() as conn:
        attributes = conn.execute(
            sa.text(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles"
                " WHERE rolname = :role"
            ),
            {"role": owner},
        ).one()
    assert tuple(attributes) == (False, False, False, False)
    names = ["tenant_a", "tenant_b", "tenant_c"]
    owned_schemas(engine, owner, names)
    url = database_url.set(username=owner)

    with TenantSync(url, model_v1(), tenants="tenant_%", workers=3) as ts:
        first = ts.sync_all()
    with TenantSync(url, model_v2(), tenants="tenant_%", workers=3) as ts:
        second = ts.sync_all()
        dry = ts.sync_all(dry_run=True)
        signup = ts.sync_tenant("tenant_new", create=True)
        again = ts.sync_all()

    assert first.ok and first.counts["migrated"] == 3, first.failed()
    assert second.ok and second.counts["migrated"] == 3, second.failed()
    assert dry.counts["unchanged"] == 3
    assert signup.status == "migrated", signup.error
    assert signup.operations[0] == "create schema tenant_new"
    assert again.counts["unchanged"] == 4
    for name in [*names, "tenant_new"]:
        assert tables(engine, name) == V2_TENANT_TABLES
        assert owners(engine, name) == {owner}, "every object belongs to the role"


def _tenant_b_owned_by_the_superuser(database_url: URL, engine: Engine, owner: str) -> None:
    """tenant_a and tenant_c belong to ``owner``; tenant_b, built at v1, to the superuser."""
    owned_schemas(engine, owner, ["tenant_a", "tenant_c"])
    make_schemas(engine, ["tenant_b"])
    with TenantSync(database_url, model_v1(), tenants=["tenant_b"]) as ts:
        assert ts.sync_all().ok


def _sync_as(database_url: URL, owner: str) -> SyncReport:
    with TenantSync(database_url.set(username=owner), model_v2(), tenants="tenant_%") as ts:
        return ts.sync_all()


def _assert_only_tenant_b_failed(report: SyncReport) -> str:
    assert report.get("tenant_a").status == "migrated"  # type: ignore[union-attr]
    assert report.get("tenant_c").status == "migrated"  # type: ignore[union-attr]
    failed = report.get("tenant_b")
    assert failed is not None and failed.status == "failed"
    assert failed.attempts == 1, "permission denied is not transient"
    assert failed.error is not None and "\n" not in failed.error
    return failed.error


def _snapshot_of(engine: Engine, schema: str) -> list[tuple[object, ...]]:
    return [row for row in catalog_snapshot(engine) if row[0] == schema]


def test_schema_the_role_may_use_but_not_create_in_fails_clearly_and_the_others_go_on(
    database_url: URL, engine: Engine, owner: str
) -> None:
    _tenant_b_owned_by_the_superuser(database_url, engine, owner)
    with engine.begin() as conn:
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA tenant_b TO {owner}"))
        conn.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA tenant_b TO {owner}"))
    before = _snapshot_of(engine, "tenant_b")

    error = _assert_only_tenant_b_failed(_sync_as(database_url, owner))

    assert re.search(r"permission denied for schema '?tenant_b'?", error), error
    assert _snapshot_of(engine, "tenant_b") == before


def test_tables_the_role_does_not_own_fail_clearly_naming_the_table(
    database_url: URL, engine: Engine, owner: str
) -> None:
    owned_schemas(engine, owner, ["tenant_a", "tenant_b", "tenant_c"])
    with TenantSync(database_url, model_v1(), tenants=["tenant_b"]) as ts:
        assert ts.sync_all().ok  # the superuser builds tenant_b: it owns the tables
    before = _snapshot_of(engine, "tenant_b")

    error = _assert_only_tenant_b_failed(_sync_as(database_url, owner))

    assert re.search(
        r"InsufficientPrivilege: (must be owner of|permission denied for) table", error
    )
    assert error.startswith("while running '"), "names the operation"
    assert _snapshot_of(engine, "tenant_b") == before


def test_schema_the_role_may_not_use_fails_clearly_also_in_a_dry_run(
    database_url: URL, engine: Engine, owner: str
) -> None:
    _tenant_b_owned_by_the_superuser(database_url, engine, owner)
    before = _snapshot_of(engine, "tenant_b")

    with TenantSync(database_url.set(username=owner), model_v2(), tenants="tenant_%") as ts:
        dry = ts.sync_all(dry_run=True).get("tenant_b")
    error = _assert_only_tenant_b_failed(_sync_as(database_url, owner))

    assert re.search(r"permission denied for schema '?tenant_b'?", error), error
    assert owner in error, "names the role"
    assert dry is not None and dry.status == "failed", dry
    assert "create table accounts" not in dry.operations
    assert _snapshot_of(engine, "tenant_b") == before


def test_signup_without_create_on_the_database_fails_clearly(
    database_url: URL, engine: Engine, owner: str
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f'REVOKE CREATE ON DATABASE "{database_url.database}" FROM {owner}'))
    before = catalog_snapshot(engine)

    with TenantSync(database_url.set(username=owner), model_v1()) as ts:
        result = ts.sync_tenant("tenant_new", create=True)

    assert result.status == "failed" and result.attempts == 1
    assert result.error == (
        f"InsufficientPrivilege: permission denied for database {database_url.database}"
    )
    assert catalog_snapshot(engine) == before


def test_tenant_table_referencing_a_shared_table_without_the_grant_fails_clearly(
    database_url: URL, engine: Engine, owner: str
) -> None:
    owned_schemas(engine, owner, ["tenant_a"])
    with engine.begin() as conn:
        conn.execute(sa.text(f"REVOKE REFERENCES ON public.plans FROM {owner}"))
    before = catalog_snapshot(engine)

    with TenantSync(database_url.set(username=owner), model_v1()) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("while running 'create table accounts'"), result.error
    assert "permission denied for table plans" in result.error
    assert catalog_snapshot(engine) == before


def test_a_version_table_the_role_does_not_own_gets_no_memo_and_the_tenant_still_syncs(
    database_url: URL, engine: Engine, owner: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = ["tenant_a", "tenant_c"]
    owned_schemas(engine, owner, names)
    url = database_url.set(username=owner)
    with TenantSync(url, model_v1(), tenants="tenant_%") as ts:
        assert ts.sync_all().counts["migrated"] == 2
    memo = "SELECT obj_description('tenant_a.tenant_sync_version'::regclass)"
    with engine.begin() as conn:
        v1_memo = conn.execute(sa.text(memo)).scalar_one()
        conn.execute(sa.text("ALTER TABLE tenant_a.tenant_sync_version OWNER TO CURRENT_USER"))
        conn.execute(sa.text(f"GRANT ALL ON tenant_a.tenant_sync_version TO {owner}"))
    with (
        caplog.at_level(logging.INFO, "tenant_sync"),
        TenantSync(url, model_v2(), tenants="tenant_%") as ts,
    ):
        changed = ts.sync_all()
        again = ts.sync_all()
    assert changed.counts["migrated"] == 2, changed.failed()
    assert "round trip failed" not in caplog.text, "both changed by their shape's round trip"
    with engine.connect() as conn:
        assert conn.execute(sa.text(memo)).scalar_one() == v1_memo, "no memo written"
    # The stale memo is not taken: its stamp is not the tenant's.
    assert again.counts["unchanged"] == 2 and all(r.in_sync for r in again.results)
    for name in names:
        assert tables(engine, name) == V2_TENANT_TABLES
