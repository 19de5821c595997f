"""Staged rollout: waves, a failure limit between them, the order they take tenants in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import catalog_snapshot, columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine
from test_cli import run_cli, text_url

from tenant_sync import ConfigurationError, SyncReport, TenantSync
from tenant_sync.output.html import render_html
from tenant_sync.output.summary import format_summary

TENANTS = ["t1", "t2", "t3", "t4", "t5", "t6"]


def _at_v1(database_url: URL, engine: Engine, names: list[str] = TENANTS) -> None:
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1()) as ts:
        assert ts.sync_all().counts["migrated"] == len(names)


def _break(engine: Engine, *schemas: str) -> None:
    """A view where v2 wants a table: ``create table labels`` fails in these tenants."""
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'CREATE VIEW "{schema}".labels AS SELECT 1 AS id'))


def _at_v2(engine: Engine, schema: str) -> bool:
    return "description" in columns(engine, schema, "projects") and "labels" in tables(
        engine, schema
    )


def test_waves_take_the_named_tenants_then_cumulative_shares_and_all_migrate(
    database_url: URL, engine: Engine
) -> None:
    _at_v1(database_url, engine)
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all(waves=[["t4"], 0.5, 1.0])

    assert [list(wave.tenants) for wave in report.waves] == [
        ["t4"],
        ["t1", "t2"],  # up to 3 of 6 in all: t4 is one of them
        ["t3", "t5", "t6"],
    ]
    assert all(wave.started and wave.note is None for wave in report.waves)
    assert [wave.counts for wave in report.waves] == [
        {"migrated": 1},
        {"migrated": 2},
        {"migrated": 3},
    ]
    assert report.ok and all(_at_v2(engine, name) for name in TENANTS)
    assert report.run is not None and report.run.options["waves"] == [["t4"], 0.5, 1.0]


def test_a_failed_canary_stops_the_run_and_the_rest_are_untouched(
    database_url: URL, engine: Engine
) -> None:
    _at_v1(database_url, engine)
    _break(engine, "t1")
    before = {name: columns(engine, name, "projects") for name in TENANTS[1:]}

    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all(waves=[["t1"], 1.0])

    assert report.counts == {
        "migrated": 0,
        "partial": 0,
        "unchanged": 0,
        "planned": 0,
        "failed": 1,
        "skipped": 5,
    }
    assert not report.ok
    first, second = report.waves
    assert first.counts == {"failed": 1}
    assert first.note == ("1 of 1 tenants failed in wave 1, more than max_failures allows (0)")
    assert not second.started and second.counts == {}
    for name in TENANTS[1:]:
        result = report.get(name)
        assert result is not None and result.status == "skipped"
        assert result.error == "wave 2 not started: " + first.note
        assert columns(engine, name, "projects") == before[name], "not touched"
    summary = format_summary(report)
    assert (
        "Waves\n  1 of 2: 1 tenant (t1): 1 failed\n    stopped: 1 of 1 tenants failed in wave 1"
        in summary
    )
    assert "  2 of 2: 5 tenants (t2, t3, t4, ...): not started" in summary


def test_max_failures_as_a_count_or_a_share_of_the_wave(database_url: URL, engine: Engine) -> None:
    _at_v1(database_url, engine)
    _break(engine, "t2")  # one failure among the first wave's 4 tenants
    with TenantSync(database_url, model_v2()) as ts:
        stopped = ts.sync_all(dry_run=True, waves=[4, 1.0], max_failures=0.2)
        allowed = ts.sync_all(dry_run=True, waves=[4, 1.0], max_failures=0.25)
        counted = ts.sync_all(waves=[4, 1.0], max_failures=1)

    # A dry run stops where the sync would: it finds t2 would fail ("already exists").
    assert stopped.waves[0].counts == {"planned": 3, "failed": 1}
    assert (
        stopped.waves[0].note is not None
        and "(20% of the wave, 0 tenants)" in stopped.waves[0].note
    )
    assert not stopped.waves[1].started and stopped.counts["skipped"] == 2
    assert allowed.waves[1].started and allowed.counts["planned"] == 5
    assert counted.waves[1].counts == {"migrated": 2}
    assert [name for name in TENANTS if _at_v2(engine, name)] == ["t1", "t3", "t4", "t5", "t6"]


def test_order_size_puts_the_biggest_tenant_last_and_a_key_orders_by_anything(
    database_url: URL, engine: Engine
) -> None:
    _at_v1(database_url, engine, ["a", "b", "c"])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO a.accounts (email) SELECT 'u' || n FROM generate_series(1, 20000) n"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE a.accounts"))  # relpages, as autovacuum would set it

    with TenantSync(database_url, model_v2()) as ts:
        by_size = ts.sync_all(dry_run=True, waves=[1, 2, 1.0], order="size")
        by_key = ts.sync_all(dry_run=True, waves=[1, 1.0], order=lambda name: {"c": 0}.get(name, 1))
        # Without waves, the order is the run's order.
        plain = ts.sync_all(dry_run=True, order="size")

    assert [wave.tenants for wave in by_size.waves] == [("b",), ("c",), ("a",)]
    assert by_key.waves[0].tenants == ("c",)
    assert [result.schema for result in plain.results] == ["b", "c", "a"] and not plain.waves
    assert by_size.run is not None and by_size.run.options["order"] == "size"


def test_tenants_after_the_last_wave_are_skipped_with_the_reason(
    database_url: URL, engine: Engine
) -> None:
    _at_v1(database_url, engine)
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all(waves=[2])

    assert report.counts["migrated"] == 2 and report.counts["skipped"] == 4
    result = report.get("t6")
    assert result is not None and result.error == "in no wave: the waves take 2 of 6 tenants"
    assert not _at_v2(engine, "t6")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"waves": []}, "waves must be a non-empty list of waves"),
        ({"waves": [0]}, "wave 1 is 0: a wave is a list of schema names, a count of at least 1,"),
        ({"waves": [1.5]}, "wave 1 is 1.5: "),
        ({"waves": [True]}, "wave 1 is True: "),
        ({"waves": [[]]}, "wave 1 must name at least one schema"),
        ({"waves": [["t1"], ["nope"]]}, "wave 2 names 'nope', which this run does not select"),
        ({"waves": [["t1"], ["t1"]]}, "'t1' is in wave 1 and in wave 2"),
        ({"max_failures": -1}, "max_failures is -1: a count of at least 0, or a fraction"),
        ({"max_failures": 1.0}, "max_failures is 1.0: "),
        ({"order": "biggest"}, "order must be None, 'size' or a callable sort key, not 'biggest'"),
    ],
)
def test_bad_waves_are_refused_before_any_tenant_runs(
    database_url: URL, engine: Engine, options: dict[str, object], message: str
) -> None:
    _at_v1(database_url, engine, ["t1", "t2"])
    before = catalog_snapshot(engine)
    with TenantSync(database_url, model_v2()) as ts, pytest.raises(ConfigurationError) as raised:
        ts.sync_all(**options)  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)
    assert catalog_snapshot(engine) == before


def test_waves_are_kept_in_the_json_report_and_shown_in_html(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _at_v1(database_url, engine)
    _break(engine, "t1")
    with TenantSync(database_url, model_v2()) as ts:
        report = ts.sync_all(waves=[1, 1.0])
    path = report.write(tmp_path / "report.json")

    assert json.loads(path.read_text())["waves"][0] == {
        "number": 1,
        "tenants": ["t1"],
        "counts": {"failed": 1},
        "started": True,
        "note": "1 of 1 tenants failed in wave 1, more than max_failures allows (0)",
    }
    assert SyncReport.load(path).waves == report.waves
    page = render_html(report)
    assert (
        '<h2>Waves</h2><ol><li>1 tenant (t1): 1 failed <span class="stopped">stopped: 1 of 1 tenants failed in wave 1'
        in page
    )
    assert "<li>5 tenants (t2, t3, t4, ...): not started</li>" in page


def test_cli_canary_and_waves(database_url: URL, engine: Engine, tmp_path: Path) -> None:
    _at_v1(database_url, engine)
    _break(engine, "t2")
    sync = ("sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v2")

    canary = run_cli(*sync, "--canary", "t2", "--report", str(tmp_path / "canary.json"))
    assert canary.returncode == 1, canary.stderr
    assert (
        "  1 of 2: 1 tenant (t2): 1 failed\n    stopped: 1 of 1 tenants failed in wave 1"
        in canary.stdout
    )
    assert "  2 of 2: 5 tenants (t1, t3, t4, ...): not started" in canary.stdout

    staged = run_cli(*sync, "--waves", "t1", "50%", "1.0", "--max-failures", "1")
    assert staged.returncode == 1, staged.stderr  # t2 failed, within the limit: all waves ran
    assert "  2 of 3: 2 tenants (t2, t3): 1 migrated, 1 failed" in staged.stdout
    assert "  3 of 3: 3 tenants (t4, t5, t6): 3 migrated" in staged.stdout

    bad = run_cli(*sync, "--waves", "nope")
    assert bad.returncode == 2
    assert "wave 1 names 'nope', which this run does not select" in bad.stderr
    limit = run_cli(*sync, "--canary", "1", "--max-failures", "many")
    assert limit.returncode == 2
    assert "argument --max-failures: 'many' is neither a count (3) nor a fraction" in limit.stderr
