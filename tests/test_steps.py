"""Data steps: run once per tenant, between the changes they need and those they guard."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from helpers import build_with_create_all, differences, make_schemas, tables
from sqlalchemy.engine import URL, Connection, Engine

from tenant_sync import ConfigurationError, Steps, SyncReport, TenantSync
from tenant_sync.output.history import format_history
from tenant_sync.output.summary import format_tenant_detail
from tenant_sync.steps import SKIPPED_AT_SIGNUP, StepTenant

FILL = "2026-12 fill customers.full_name"


def customers_v1() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    return metadata


def customers_v2() -> sa.MetaData:
    """``name`` becomes ``full_name``, NOT NULL, by a backfill: not a rename."""
    metadata = sa.MetaData()
    sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("full_name", sa.Text, nullable=False),
    )
    return metadata


def build_v1(url: URL, engine: Engine, rows: dict[str, int]) -> None:
    """Tenants at v1, each with ``rows[name]`` customers named ``c<i>``."""
    make_schemas(engine, list(rows))
    with TenantSync(url, customers_v1()) as ts:
        assert ts.sync_all().ok
    with engine.begin() as conn:
        for schema, count in rows.items():
            conn.execute(
                sa.text(
                    f'INSERT INTO "{schema}".customers (name)'
                    " SELECT 'c' || i FROM generate_series(1, :n) AS i"
                ),
                {"n": count},
            )


def full_names(engine: Engine, schema: str) -> list[str | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT full_name FROM "{schema}".customers ORDER BY id'))
        return list(rows.scalars())


def fill(conn: Connection, tenant: StepTenant) -> None:
    conn.execute(sa.text("UPDATE customers SET full_name = name WHERE full_name IS NULL"))


def test_expand_backfill_contract_in_one_sync_and_the_step_never_runs_twice(
    database_url: URL, engine: Engine
) -> None:
    build_v1(database_url, engine, {"acme": 3, "globex": 5, "quiet": 0})
    calls: list[str] = []

    with TenantSync(database_url, customers_v2(), allow_destructive=True) as ts:

        @ts.step(FILL, before="data_dependent")
        def fill_full_name(conn: Connection, tenant: StepTenant) -> None:
            calls.append(tenant.schema)
            fill(conn, tenant)

        report = ts.sync_all()
        again = ts.sync_all()
        histories = {name: ts.history(name) for name in ("acme", "globex", "quiet")}

    assert report.ok and report.counts["migrated"] == 3, report.summary()
    assert sorted(calls) == ["acme", "globex", "quiet"], "once per tenant, not on the rerun"
    assert again.counts["unchanged"] == 3 and all(not r.steps for r in again.results)
    build_with_create_all(engine, customers_v2(), "reference")
    for name in ("acme", "globex", "quiet"):
        assert differences(engine, name, "reference") == {}, name
        result = report.get(name)
        assert result is not None and result.steps == [FILL]
        # Expand, then the step, then contract: NOT NULL and the drop after the backfill.
        assert result.operations == [
            "add column customers.full_name TEXT",
            "set NOT NULL on customers.full_name",
            "drop column customers.name",
        ]
        steps = [entry for entry in histories[name] if entry.step is not None]
        assert [entry.step for entry in steps] == [FILL]
        assert steps[0].operations[0].startswith(f"step {FILL}: ran in ")
    assert full_names(engine, "globex") == [f"c{i}" for i in range(1, 6)]
    # The report keeps them: JSON round trip, the terminal's detail, the history's text.
    loaded = SyncReport.from_dict(report.to_dict()).get("acme")
    assert loaded is not None and loaded.steps == [FILL]
    assert f"Data steps (1)\n  {FILL}" in format_tenant_detail(loaded)
    shown = format_history("acme", histories["acme"])
    # The build, the expand, the contract: each phase is an entry of its own.
    assert shown.startswith("acme: 3 changes and 1 data step recorded, newest first")


def test_a_batched_step_commits_each_batch_and_a_rerun_resumes_it(
    database_url: URL, engine: Engine
) -> None:
    build_v1(database_url, engine, {"big": 35})
    batches: list[int] = []
    fail_at = [2]

    def fill_batch(conn: Connection, tenant: StepTenant) -> int:
        batches.append(tenant.batch)
        if tenant.batch == fail_at[0]:
            raise RuntimeError("the backfill broke")
        return conn.execute(
            sa.text(
                "UPDATE customers SET full_name = name WHERE id IN"
                " (SELECT id FROM customers WHERE full_name IS NULL ORDER BY id LIMIT :n)"
            ),
            {"n": tenant.batch_size},
        ).rowcount

    with TenantSync(database_url, customers_v2(), allow_destructive=True) as ts:
        ts.step(FILL, batch_size=10)(fill_batch)
        failed = ts.sync_all()
        filled, columns_after_failure = full_names(engine, "big"), _columns(engine, "big")
        fail_at[0] = -1
        batches.clear()
        rerun = ts.sync_all()
        history = ts.history("big")

    result = failed.get("big")
    assert result is not None and result.status == "failed"
    assert result.error is not None
    assert result.error.startswith(f"step {FILL!r} failed: RuntimeError: the backfill broke")
    assert "committed before it: 1 change" in result.error
    # Two batches of 10 committed; NOT NULL and the drop waited.
    assert sum(name is not None for name in filled) == 20
    assert columns_after_failure == {"id", "name", "full_name"}
    assert batches == [0, 1], "resumed: 10 rows, then the last 5"
    assert rerun.ok and rerun.get("big").steps == [FILL]  # type: ignore[union-attr]
    assert full_names(engine, "big") == [f"c{i}" for i in range(1, 36)]
    assert [entry.step for entry in history if entry.step] == [FILL]
    assert "2 batches of up to 10 rows" in next(e for e in history if e.step).operations[0]
    build_with_create_all(engine, customers_v2(), "reference")
    assert differences(engine, "big", "reference") == {}


def test_a_failing_step_fails_its_tenant_alone_and_its_later_steps_wait(
    database_url: URL, engine: Engine
) -> None:
    build_v1(database_url, engine, {"good": 2, "bad": 2})
    second: list[str] = []

    with TenantSync(database_url, customers_v2(), allow_destructive=True) as ts:

        @ts.step(FILL)
        def fill_or_fail(conn: Connection, tenant: StepTenant) -> None:
            if tenant.schema == "bad":
                conn.execute(sa.text("SELECT 1 / 0"))
            fill(conn, tenant)

        @ts.step("2026-12 audit", before=None)
        def audit(conn: Connection, tenant: StepTenant) -> None:
            second.append(tenant.schema)

        report = ts.sync_all()
        bad_history = ts.history("bad")

    assert report.counts == {**report.counts, "migrated": 1, "failed": 1}
    bad = report.get("bad")
    assert bad is not None and bad.error is not None
    assert f"step {FILL!r} failed" in bad.error and "division by zero" in bad.error
    assert bad.operations == ["add column customers.full_name TEXT"], "what stays committed"
    assert second == ["good"], "the failed tenant's later step waits"
    assert [entry.step for entry in bad_history if entry.step] == []
    assert _columns(engine, "bad") == {"id", "name", "full_name"}
    build_with_create_all(engine, customers_v2(), "reference")
    assert differences(engine, "good", "reference") == {}


def test_new_tenants_record_their_steps_as_done_or_run_them(
    database_url: URL, engine: Engine
) -> None:
    seeded: list[tuple[str, bool]] = []
    filled: list[str] = []
    make_schemas(engine, ["empty_one"])

    with TenantSync(database_url, customers_v2()) as ts:

        @ts.step(FILL)
        def never_at_signup(conn: Connection, tenant: StepTenant) -> None:
            filled.append(tenant.schema)

        signup = ts.sync_tenant("fresh")  # only skipped steps: the one round trip
        assert signup.status == "migrated" and signup.steps == []

        @ts.step("seed the first customer", before=None, on_signup="run")
        def seed(conn: Connection, tenant: StepTenant) -> None:
            seeded.append((tenant.schema, tenant.new))
            conn.execute(sa.text("INSERT INTO customers (full_name) VALUES ('Owner')"))

        second = ts.sync_tenant("second")
        found = ts.sync_all()  # "empty_one" is new too; "fresh" only now meets the seed
        history = {name: ts.history(name) for name in ("fresh", "second", "empty_one")}

    assert filled == [], "no tenant had rows to fill: each was new"
    assert second.status == "migrated" and second.steps == ["seed the first customer"]
    assert sorted(seeded) == [("empty_one", True), ("fresh", False), ("second", True)]
    assert found.get("empty_one").steps == ["seed the first customer"]  # type: ignore[union-attr]
    for name, entries in history.items():
        words = {entry.step: entry.operations[0] for entry in entries if entry.step}
        assert set(words) == {FILL, "seed the first customer"}, name
        assert words[FILL] == f"step {FILL}: {SKIPPED_AT_SIGNUP}"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT full_name FROM second.customers")).all() == [("Owner",)]


def test_a_dry_run_lists_the_steps_that_would_run_and_changes_nothing(
    database_url: URL, engine: Engine
) -> None:
    build_v1(database_url, engine, {"acme": 3})
    make_schemas(engine, ["newcomer"])
    calls: list[str] = []
    with TenantSync(database_url, customers_v2(), allow_destructive=True) as ts:
        ts.step(FILL)(lambda conn, tenant: calls.append(tenant.schema))
        ts.step("seed", before=None, on_signup="run")(lambda conn, t: calls.append(t.schema))
        plan = ts.sync_all(dry_run=True)
        one = ts.sync_tenant("acme", create=False, dry_run=True)

    acme, newcomer = plan.get("acme"), plan.get("newcomer")
    assert acme is not None and newcomer is not None
    # The NOT NULL column has rows under it, but the step fills it first: not a failure.
    assert acme.status == "planned" and acme.steps == [FILL, "seed"], acme.error
    assert one.status == "planned" and one.steps == [FILL, "seed"], one.error
    assert newcomer.status == "planned" and newcomer.steps == ["seed"]
    assert calls == []
    assert "tenant_sync_history" not in tables(engine, "newcomer")
    assert _columns(engine, "acme") == {"id", "name"}


def test_two_runs_at_once_run_a_step_once_per_tenant(database_url: URL, engine: Engine) -> None:
    names = [f"t{i}" for i in range(6)]
    build_v1(database_url, engine, dict.fromkeys(names, 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE public.step_calls (schema text)"))

    def count_call(conn: Connection, tenant: StepTenant) -> None:
        conn.execute(sa.text("INSERT INTO public.step_calls VALUES (:s)"), {"s": tenant.schema})

    start = threading.Barrier(2)
    reports = []

    def run() -> None:
        with TenantSync(database_url, customers_v1(), workers=3) as ts:
            ts.step("count")(count_call)
            start.wait()
            reports.append(ts.sync_all())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(report.ok for report in reports)
    with engine.connect() as conn:
        calls = conn.execute(sa.text("SELECT schema FROM public.step_calls")).scalars().all()
    assert sorted(calls) == names
    ran = sorted(name for report in reports for result in report.results for name in result.steps)
    assert ran == ["count"] * len(names), "each tenant's step is reported by one run"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": ""}, "a step needs a name, a non-empty string; got ''"),
        ({"name": FILL}, f"a step named {FILL!r} is already registered"),
        (
            {"name": "x", "before": "later"},
            "step 'x': before must be one of 'safe', 'data_dependent', 'rewrite',"
            " 'destructive' or None, got 'later'",
        ),
        ({"name": "x", "batch_size": 0}, "step 'x': batch_size must be a positive integer"),
        ({"name": "x", "on_signup": "always"}, "step 'x': on_signup must be 'skip' or 'run'"),
    ],
)
def test_bad_step_arguments_are_refused_in_one_line(
    database_url: URL, arguments: dict[str, object], message: str
) -> None:
    with TenantSync(database_url, customers_v2()) as ts:
        ts.step(FILL)(fill)
        with pytest.raises(ConfigurationError) as raised:
            ts.step(**arguments)(fill)  # type: ignore[arg-type]
        assert [step.name for step in ts.steps] == [FILL]
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def _columns(engine: Engine, schema: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = :s AND table_name = 'customers'"
            ),
            {"s": schema},
        )
        return set(rows.scalars())


def test_steps_registered_apart_run_as_those_of_the_tenant_sync(
    database_url: URL, engine: Engine
) -> None:
    """A ``Steps`` of the application's own module: the TenantSync runs its steps, in
    order, with those registered on it after; a name twice is refused in one line."""
    build_v1(database_url, engine, {"t1": 3})
    ran: list[str] = []
    steps = Steps()

    @steps.step(FILL, batch_size=2)
    def fill_apart(conn: Connection, tenant: StepTenant) -> int:
        ran.append(f"{tenant}:{tenant.batch}")
        return conn.execute(
            sa.text(
                "UPDATE customers SET full_name = name WHERE id IN"
                " (SELECT id FROM customers WHERE full_name IS NULL LIMIT :n)"
            ),
            {"n": tenant.batch_size},
        ).rowcount

    with TenantSync(database_url, customers_v2(), tenants=["t1"], steps=steps) as ts:
        ts.step("2026-12 count", before=None)(lambda conn, tenant: ran.append("count"))
        with pytest.raises(
            ConfigurationError, match=f"a step named '{FILL}' is already registered"
        ):
            ts.step(FILL)(fill)
        assert [step.name for step in ts.steps] == [FILL, "2026-12 count"]
        assert ts.sync_all().ok
    assert ran == ["t1:0", "t1:1", "count"]
    assert full_names(engine, "t1") == ["c1", "c2", "c3"]
    assert len(steps) == 1 and "Steps" in repr(steps)
