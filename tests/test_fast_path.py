"""The shape fast path gives exactly what per-tenant autogenerate gives, only faster."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from conftest import create_database, drop_database
from helpers import columns, make_schemas, shapes_of
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync, yardstick
from tenant_sync.failures import SHAPE_CHANGED
from tenant_sync.fastpath import by_shape
from tenant_sync.fastpath.catalog import Shape, read_shapes, recheck_statement
from tenant_sync.fastpath.shapes import ShapeChanged, plan_shape
from tenant_sync.model import Model
from tenant_sync.options import SyncOptions
from tenant_sync.plan import ignored_tables
from tenant_sync.tenant import TenantJob, sync_one

# Each drift is SQL run in one tenant ({t} is the quoted schema).
DRIFTS = {
    "missing column": "ALTER TABLE {t}.accounts DROP COLUMN settings",
    "extra column": "ALTER TABLE {t}.projects ADD COLUMN legacy_code text",
    "extra index": "CREATE INDEX ix_extra ON {t}.tasks (title)",
    "other type": "ALTER TABLE {t}.tasks ALTER COLUMN title TYPE varchar(300)",
    "extra table": "CREATE TABLE {t}.scratch (id int PRIMARY KEY)",
    "missing table": "DROP TABLE {t}.tasks",
    "missing index": "DROP INDEX {t}.ix_tasks_project_status",
    "other default": "ALTER TABLE {t}.projects ALTER COLUMN active SET DEFAULT false",
    "nullable": "ALTER TABLE {t}.projects ALTER COLUMN name DROP NOT NULL",
    "comment": "COMMENT ON TABLE {t}.accounts IS 'changed by hand'",
}


def build_drifted_tenants(database_url: URL, engine: Engine, seed: int) -> list[str]:
    """Tenants at model v1 with assorted random drift; several share the same drift."""
    rng = random.Random(seed)
    names = [f"t{i:02d}" for i in range(16)]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1(), workers=4) as ts:
        ts.sync_all()
    kinds = list(DRIFTS)
    with engine.begin() as conn:
        for name in names[2:]:
            for kind in rng.sample(kinds, rng.choice([1, 1, 2, 3])):
                conn.execute(sa.text(DRIFTS[kind].format(t=f'"{name}"')))
    return names


def by_tenant(report: object) -> dict[str, tuple[list[str], list[str], list[str], str]]:
    return {
        r.schema: (sorted(r.operations), sorted(r.withheld), sorted(r.sql), r.status)
        for r in report.results  # type: ignore[attr-defined]
    }


@pytest.fixture(params=["one chunk", "chunks of 3"])
def chunked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The catalog pass in one chunk, and in many: tenants stream to the workers by chunk."""
    if request.param == "chunks of 3":
        monkeypatch.setattr(by_shape, "FIRST_CHUNK", 3)
        monkeypatch.setattr(by_shape, "SHAPE_CHUNK", 3)
    return str(request.param)


def test_fast_path_plans_exactly_what_per_tenant_autogenerate_plans(
    database_url: URL, engine: Engine, chunked: str
) -> None:
    build_drifted_tenants(database_url, engine, seed=7)
    with TenantSync(database_url, model_v2(), workers=4, verify=True) as ts:
        slow = ts.sync_all(dry_run=True)
    with TenantSync(database_url, model_v2(), workers=4) as ts:
        fast = ts.sync_all(dry_run=True)
        shapes = ts.drift()

    assert by_tenant(fast) == by_tenant(slow)
    assert len({tuple(r.operations) for r in fast.results}) > 3, "the drift is assorted"
    assert 1 < len(shapes) < len(fast.results), "tenants share shapes"
    assert sorted(t for shape in shapes for t in shape.tenants) == sorted(
        r.schema for r in fast.results
    )


def test_fast_path_applies_what_per_tenant_autogenerate_applies(
    database_url: URL, engine: Engine, chunked: str
) -> None:
    names = build_drifted_tenants(database_url, engine, seed=11)
    with TenantSync(database_url, model_v2(), workers=4, verify=True) as ts:
        expected = by_tenant(ts.sync_all(dry_run=True))
    with TenantSync(database_url, model_v2(), workers=4) as ts:
        applied = ts.sync_all()
    with TenantSync(database_url, model_v2(), workers=4, verify=True) as ts:
        after = ts.sync_all(dry_run=True)

    assert applied.ok
    for name in names:
        operations, withheld, sql, _ = expected[name]
        result = applied.get(name)
        assert result is not None
        assert (sorted(result.operations), sorted(result.withheld), sorted(result.sql)) == (
            operations,
            withheld,
            sql,
        )
        checked = after.get(name)
        assert checked is not None and checked.operations == [], (name, checked.operations)
        assert sorted(checked.withheld) == withheld


def test_a_schema_that_is_no_tenant_in_a_later_chunk_is_left_alone(
    database_url: URL, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(by_shape, "FIRST_CHUNK", 2)
    monkeypatch.setattr(by_shape, "SHAPE_CHUNK", 2)
    names = [f"t{i}" for i in range(5)]
    make_schemas(engine, [*names, "zz_analytics"])
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE zz_analytics.daily (day date PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO zz_analytics.daily VALUES ('2026-12-01')"))
    with TenantSync(database_url, model_v2(), workers=3, allow_destructive=True) as ts:
        report = ts.sync_all()
        again = ts.sync_all()

    assert [r.schema for r in report.results] == [*names, "zz_analytics"], "in order"
    assert [r.status for r in report.results] == ["migrated"] * 5 + ["skipped"]
    assert [r.status for r in again.results] == ["unchanged"] * 5 + ["skipped"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM zz_analytics.daily")).scalar() == 1


def test_up_to_date_tenants_are_reported_unchanged_without_being_touched(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, [f"t{i}" for i in range(6)])
    with TenantSync(database_url, model_v2(), workers=3) as ts:
        ts.sync_all()
        with engine.connect() as blocker:
            # A tenant busy under an exclusive lock is still known to be up to date.
            blocker.execute(sa.text("LOCK TABLE t3.projects IN ACCESS EXCLUSIVE MODE"))
            report = ts.sync_all()
            blocker.rollback()
    assert report.counts["unchanged"] == 6
    assert all(r.attempts == 0 for r in report.results), "no tenant transaction was needed"


def test_tenant_that_changed_after_the_catalog_pass_is_compared_alone(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["first", "second"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    model = Model(model_v2())
    options = SyncOptions()
    with engine.begin() as conn:
        shapes = read_shapes(
            conn,
            ["first", "second"],
            ignored_tables(options),
            options.version_table,
        )
    shared = plan_shape(engine, "first", model, options, shapes["first"])
    # "second" drifts after the pass: the shared plan no longer fits it.
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE second.projects ADD COLUMN description text"))

    trip = shared.round_trip("second", shapes["second"], model.fingerprint)
    result = sync_one(engine, TenantJob("second", model, options, trip=trip))

    assert result.status == "migrated", result.error
    assert "add column projects.description TEXT" in shared.operations
    assert "add column projects.description TEXT" not in result.operations
    assert "priority" in columns(engine, "second", "projects")


def test_a_representative_that_changed_after_the_pass_plans_nothing_for_its_shape(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["first", "second"])
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    options = SyncOptions()
    with engine.begin() as conn:
        shapes = read_shapes(conn, ["first"], ignored_tables(options), options.version_table)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE first.projects ADD COLUMN description text"))

    with pytest.raises(ShapeChanged, match="first changed since the catalog pass"):
        plan_shape(engine, "first", Model(model_v2()), options, shapes["first"])


def test_verify_option_forces_the_per_tenant_comparison(database_url: URL, engine: Engine) -> None:
    make_schemas(engine, ["a", "b"])
    with TenantSync(database_url, model_v1(), verify=True) as ts:
        ts.sync_all()
        report = ts.sync_all()
    assert all(r.status == "unchanged" and r.attempts == 1 for r in report.results)


@contextlib.contextmanager
def _statements() -> Iterator[list[str]]:
    """Every statement any engine sends meanwhile (observed, not altered)."""
    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(Engine, "before_cursor_execute", record)


def _reflected(statements: list[str]) -> bool:
    """True when Alembic autogenerate ran: SQLAlchemy's reflection of columns was sent."""
    return any("pg_catalog.pg_attribute.attname AS name" in s for s in statements)


def test_a_tenant_equal_to_the_model_is_not_compared_by_alembic(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, [f"t{i}" for i in range(4)])
    with TenantSync(database_url, model_v1(), workers=2) as ts:
        ts.sync_all()
    with TenantSync(database_url, model_v2(), workers=2) as ts:
        # The first run after a model change: every tenant differs, Alembic plans.
        with _statements() as sent:
            assert ts.sync_all().counts["migrated"] == 4
        assert _reflected(sent)
        ts.sync_tenant("signed_up")
    # A column dropped and added again comes last: t0's columns are in another order
    # than the model's, and it has another shape, still equal to the model.
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE t0.projects DROP COLUMN active"))
        conn.execute(
            sa.text("ALTER TABLE t0.projects ADD COLUMN active boolean NOT NULL DEFAULT true")
        )
    assert list(columns(engine, "t0", "projects")) != list(columns(engine, "t1", "projects"))
    with TenantSync(database_url, model_v2(), workers=2) as ts, _statements() as sent:
        report = ts.sync_all()
    assert report.counts["unchanged"] == 5 and all(r.in_sync for r in report.results)
    assert not _reflected(sent), "a tenant equal to the model needs no Alembic comparison"

    # A tenant that drifts is compared, and repaired.
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE t3.projects DROP COLUMN active"))
    with TenantSync(database_url, model_v2(), workers=2) as ts, _statements() as sent:
        repaired = ts.sync_all()
    assert _reflected(sent)
    assert [r.schema for r in repaired.results if r.status == "migrated"] == ["t3"]
    assert "active" in columns(engine, "t3", "projects")


def test_a_run_that_builds_the_model_s_state_plans_what_per_tenant_autogenerate_plans(
    database_url: URL, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model new to the process: its state is built during the run, beside the first
    # tenant's comparison, which (the tenant records v1) runs autogenerate meanwhile.
    names = build_drifted_tenants(database_url, engine, seed=5)
    monkeypatch.setattr(yardstick, "_model_states", {})
    with TenantSync(database_url, model_v2(), workers=4) as ts:
        fast = ts.sync_all(dry_run=True)
    with TenantSync(database_url, model_v2(), workers=4, verify=True) as ts:
        slow = ts.sync_all(dry_run=True)
    assert by_tenant(fast) == by_tenant(slow)
    assert fast.get(names[0]).operations  # type: ignore[union-attr]

    # Once every tenant records v2, a run that builds the state again compares none
    # of them by autogenerate.
    with TenantSync(database_url, model_v2(), workers=4, allow_destructive=True) as ts:
        assert ts.sync_all().ok
    monkeypatch.setattr(yardstick, "_model_states", {})
    with TenantSync(database_url, model_v2(), workers=4) as ts, _statements() as sent:
        again = ts.sync_all()
    assert again.counts["unchanged"] == len(names)
    assert not _reflected(sent)


# Changes made after the catalog pass, beyond DRIFTS, that the recheck must catch.
LATE_CHANGES = {
    **DRIFTS,
    "column comment": "COMMENT ON COLUMN {t}.projects.name IS 'late'",
    "enum label": "ALTER TYPE {t}.task_status ADD VALUE 'late'",
    "renamed index": "ALTER INDEX {t}.ix_tasks_project_status RENAME TO ix_late",
    "dropped constraint": "ALTER TABLE {t}.tasks DROP CONSTRAINT tasks_project_id_fkey",
    "dropped default": "ALTER TABLE {t}.projects ALTER COLUMN active DROP DEFAULT",
}


def _recheck_passes(engine: Engine, name: str, shape: Shape) -> bool:
    with engine.connect() as conn:
        return _run_rechecks(conn, [(name, shape)], commit=False) == []


def test_recheck_passes_unchanged_tenants_of_every_shape(database_url: URL, engine: Engine) -> None:
    names = build_drifted_tenants(database_url, engine, seed=3)
    shapes = shapes_of(engine, names)
    assert len({shape.fingerprint for shape in shapes.values()}) > 3
    assert [name for name in names if not _recheck_passes(engine, name, shapes[name])] == []


def test_recheck_catches_every_kind_of_change_made_after_the_pass(
    database_url: URL, engine: Engine
) -> None:
    names = [f"late_{i:02d}" for i in range(len(LATE_CHANGES))] + ["untouched"]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1(), workers=4) as ts:
        assert ts.sync_all().ok
    shapes = shapes_of(engine, names)
    for name, (kind, change) in zip(names, LATE_CHANGES.items(), strict=False):
        with engine.begin() as conn:
            conn.execute(sa.text(change.format(t=name)))
        assert not _recheck_passes(engine, name, shapes[name]), kind
    assert _recheck_passes(engine, "untouched", shapes["untouched"])


def _run_rechecks(
    conn: sa.Connection, checks: list[tuple[str, Shape]], commit: bool = True
) -> list[str]:
    """Run each tenant's recheck in a transaction of its own on ``conn``; the failures.

    A recheck that passes is committed, or rolled back if ``commit`` is false.
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    failed = []
    for name, shape in checks:
        try:
            raw.cursor().execute(recheck_statement(name, shape, ignored_tables(SyncOptions())))
            if commit:
                raw.commit()
            else:
                raw.rollback()
        except psycopg.Error as exc:
            assert exc.sqlstate == SHAPE_CHANGED, exc
            raw.rollback()
            failed.append(name)
    return failed


def _shapes_then_change_b(database_url: URL, engine: Engine, names: list[str]) -> dict[str, Shape]:
    """Build ``names`` at v1 and take their shapes; then tenant ``b`` changes."""
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1()) as ts:
        assert ts.sync_all().ok
    with engine.begin() as conn:
        shapes = read_shapes(conn, names, ignored_tables(SyncOptions()), "tenant_sync_version")
        conn.execute(sa.text("ALTER TABLE b.projects ADD COLUMN late int"))
    return shapes


def test_recheck_keeps_one_function_per_connection_across_tenants(
    database_url: URL, engine: Engine
) -> None:
    names = ["a", "b", "c"]
    shapes = _shapes_then_change_b(database_url, engine, names)
    count = sa.text(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()"
        " AND proname LIKE 'tenant_sync_stamp_%'"
    )
    with engine.connect() as conn:
        # Made in a transaction that rolls back, the function goes with it...
        assert _run_rechecks(conn, [("a", shapes["a"])], commit=False) == []
        gone = conn.execute(count).scalar_one()
        conn.rollback()
        # ...and the next recheck makes it again; a's commits it, b's fails, c's uses it.
        assert _run_rechecks(conn, [(name, shapes[name]) for name in names]) == ["b"]
        kept = conn.execute(count).scalar_one()
    assert (gone, kept) == (0, 1)


def test_recheck_works_for_a_role_without_the_temporary_privilege(
    database_url: URL, engine: Engine
) -> None:
    names = ["a", "b", "no_create"]
    shapes = _shapes_then_change_b(database_url, engine, names)
    role = f"ts_no_temp_{database_url.database}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"REVOKE TEMPORARY ON DATABASE {database_url.database} FROM PUBLIC"))
        conn.execute(sa.text(f"GRANT USAGE, CREATE ON SCHEMA a, b TO {role}"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA no_create TO {role}"))
    limited = sa.create_engine(database_url.set(username=role), poolclass=sa.NullPool)
    try:
        with limited.connect() as conn:
            checks = [(name, shapes[name]) for name in names]
            assert _run_rechecks(conn, checks) == ["b", "no_create"]
    finally:
        limited.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))


def test_the_databases_of_one_server_build_the_model_s_state_once(
    admin_engine: Engine, database_url: URL, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yardstick, "_model_states", {})
    other = create_database(admin_engine, "second_database")
    try:
        with sa.create_engine(other, poolclass=sa.NullPool).begin() as conn:
            conn.execute(sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY)"))
        built = []
        for url in (database_url, other):
            make_schemas(sa.create_engine(url, poolclass=sa.NullPool), ["a", "b"])
            with TenantSync(url, model_v1(), workers=2) as ts, _statements() as sent:
                assert ts.sync_all().counts["migrated"] == 2
            built.append(any("tenant_sync_scratch" in statement for statement in sent))
    finally:
        drop_database(admin_engine, other)
    assert built == [True, False]
