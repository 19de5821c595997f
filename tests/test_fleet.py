"""A fleet of three PostgreSQL servers synced in one run (tenant_sync.fleet).

Three embedded servers run at once, each with tenants of other shapes; one is stopped
before or in the middle of a run.  Each tenant is checked against a schema built by
``create_all`` of the model in the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fleet_servers import NAMES, Servers, engines, servers
from helpers import build_with_create_all, differences, make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine
from test_cli import run_cli, text_url

from tenant_sync import Fleet, TenantResult, TenantSync
from tenant_sync.errors import ConfigurationError
from tenant_sync.output.summary import format_summary
from tenant_sync.report import SyncReport

__all__ = ["servers"]  # the fixture, imported for pytest

#: The tenants on each server, and the state each starts in.
LAYOUT = {
    "eu": {"tenant_a1": "v1", "tenant_a2": "v1", "tenant_a3": "v1"},
    "us": {"tenant_b1": "empty", "tenant_b2": "empty", "tenant_b3": "v2"},
    "ap": {"tenant_c1": "v1", "tenant_c2": "v2", "tenant_c3": "v1", "tenant_c4": "empty"},
}


@pytest.fixture
def fleet_urls(servers: Servers, request: pytest.FixtureRequest) -> Iterator[dict[str, URL]]:
    """A fresh database on each server, its tenants built as LAYOUT says."""
    urls = servers.fresh_databases(request.node.name[5:25].replace("[", "_"))
    for name, engine in engines(urls).items():
        _build(engine, urls[name], LAYOUT[name])
        engine.dispose()
    yield urls
    servers.restart()


def _build(engine: Engine, url: URL, tenants: dict[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY, name text NOT NULL)")
        )
    make_schemas(engine, list(tenants))
    for version, model in (("v1", model_v1()), ("v2", model_v2())):
        chosen = [schema for schema, state in tenants.items() if state == version]
        if chosen:
            with TenantSync(url, model, tenants=chosen) as ts:
                assert ts.sync_all().counts["migrated"] == len(chosen)
    build_with_create_all(engine, model_v2(), "reference")


def _assert_equal_to_model(urls: dict[str, URL], databases: list[str]) -> None:
    for name in databases:
        engine = sa.create_engine(urls[name], poolclass=sa.NullPool)
        for schema in LAYOUT[name]:
            assert differences(engine, schema, "reference") == {}, (name, schema)
        engine.dispose()


def _statuses(report: SyncReport) -> dict[tuple[str | None, str], str]:
    return {(result.database, result.schema): result.status for result in report.results}


def test_a_fleet_syncs_every_database_and_reports_each_tenant_with_its_database(
    fleet_urls: dict[str, URL],
) -> None:
    seen: list[TenantResult] = []
    with Fleet(
        fleet_urls, model_v2(), tenants="tenant_%", workers=2, on_result=seen.append
    ) as fleet:
        assert len(fleet.list_tenants()) == 10
        report = fleet.sync_all()

    expected = {
        (name, schema): "unchanged" if state == "v2" else "migrated"
        for name, tenants in LAYOUT.items()
        for schema, state in tenants.items()
    }
    assert _statuses(report) == expected
    assert report.ok
    assert sorted((r.database, r.schema) for r in seen) == sorted(expected)
    assert [(d.name, d.counts, d.error) for d in report.databases] == [
        ("eu", {"migrated": 3}, None),
        ("us", {"migrated": 2, "unchanged": 1}, None),
        ("ap", {"migrated": 3, "unchanged": 1}, None),
    ]
    _assert_equal_to_model(fleet_urls, list(NAMES))

    # The JSON keeps every tenant's database, and the summary counts each database.
    again = SyncReport.from_dict(report.to_dict())
    assert _statuses(again) == expected and again.databases == report.databases
    summary = format_summary(report, color=False)
    assert "us: 3 tenants: 2 migrated, 1 unchanged" in summary, summary


def test_a_database_down_from_the_start_is_reported_once_and_the_others_finish(
    servers: Servers, fleet_urls: dict[str, URL], caplog: pytest.LogCaptureFixture
) -> None:
    servers.stop("us")
    with Fleet(fleet_urls, model_v2(), tenants="tenant_%", workers=2) as fleet:
        report = fleet.sync_all()

    assert not report.ok
    down = {d.name: d.error for d in report.databases if d.error}
    assert list(down) == ["us"], down
    assert {database for database, _ in _statuses(report)} == {"eu", "ap"}
    assert set(_statuses(report).values()) <= {"migrated", "unchanged"}
    _assert_equal_to_model(fleet_urls, ["eu", "ap"])
    errors = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(errors) == 1, errors  # once, when found
    assert f"us: unreachable: {down['us']}" in format_summary(report, color=False)


def test_a_registry_names_each_database_s_tenants_and_a_down_database_s_are_skipped(
    servers: Servers, fleet_urls: dict[str, URL]
) -> None:
    registry = [("eu", "tenant_a2"), ("us", "tenant_b1"), ("ap", "tenant_c4"), ("ap", "tenant_c1")]
    servers.stop("us")
    with Fleet(fleet_urls, model_v2(), registry=lambda: registry, workers=2) as fleet:
        report = fleet.sync_all()

    assert _statuses(report) == {
        ("eu", "tenant_a2"): "migrated",
        ("us", "tenant_b1"): "skipped",
        ("ap", "tenant_c1"): "migrated",
        ("ap", "tenant_c4"): "migrated",
    }
    skipped = report.get("tenant_b1", database="us")
    assert skipped is not None and skipped.error is not None
    assert skipped.error.startswith("database us unreachable"), skipped.error


def test_a_database_stopped_mid_run_leaves_its_tenants_whole_and_the_others_finish(
    servers: Servers, fleet_urls: dict[str, URL]
) -> None:
    many = [f"tenant_m{i:02d}" for i in range(30)]
    ap = sa.create_engine(fleet_urls["ap"], poolclass=sa.NullPool)
    make_schemas(ap, many)
    ap.dispose()

    def stop_ap_after_its_first(result: TenantResult) -> None:
        if result.database == "ap" and result.status == "migrated" and servers.servers["ap"].pid:
            servers.stop("ap")

    with Fleet(
        fleet_urls,
        model_v2(),
        tenants="tenant_%",
        workers=2,
        retries=0,
        on_result=stop_ap_after_its_first,
    ) as fleet:
        report = fleet.sync_all()

    ap_results = [r for r in report.results if r.database == "ap"]
    statuses = [r.status for r in ap_results]
    assert statuses.count("migrated") >= 1 and "skipped" in statuses, statuses
    assert len(ap_results) == len(LAYOUT["ap"]) + len(many)
    for result in ap_results:
        if result.status == "skipped":
            assert result.error is not None and "database ap unreachable" in result.error
    assert [d.name for d in report.databases if d.error] == ["ap"]
    others = [r.status for r in report.results if r.database != "ap"]
    assert others and set(others) <= {"migrated", "unchanged"}, others
    _assert_equal_to_model(fleet_urls, ["eu", "us"])


def test_fleet_input_errors_are_one_line(fleet_urls: dict[str, URL]) -> None:
    with pytest.raises(ConfigurationError, match="at least one database"):
        Fleet({}, model_v2())
    with pytest.raises(ConfigurationError, match="database name"):
        Fleet({"a=b": fleet_urls["eu"]}, model_v2())
    mars = Fleet(fleet_urls, model_v2(), registry=lambda: [("mars", "tenant_x")])
    with mars, pytest.raises(ConfigurationError, match="no database 'mars' in this fleet"):
        mars.sync_all()
    with Fleet(fleet_urls, model_v2()) as fleet:
        with pytest.raises(ConfigurationError, match="no database 'mars'"):
            fleet.sync_tenant("mars", "tenant_new")
        signup = fleet.sync_tenant("us", "tenant_new")
    assert (signup.database, signup.status) == ("us", "migrated")


def test_the_cli_syncs_a_fleet_from_repeated_urls_or_a_fleet_file(
    servers: Servers, fleet_urls: dict[str, URL], tmp_path: Path
) -> None:
    urls = [f"--url={name}={text_url(url)}" for name, url in fleet_urls.items()]
    common = ["--model", "cli_model:metadata_v2", "--tenants", "tenant_%"]
    planned = run_cli("plan", *urls, *common, "--workers", "2")
    assert planned.returncode == 0, planned.stderr
    # v1 -> v2 in three tenants of eu and two of ap: one change set across databases.
    assert "Change set 1: 5 tenants (eu/tenant_a1, eu/tenant_a2, eu/tenant_a3, ...)" in (
        planned.stdout
    ), planned.stdout

    servers.stop("us")
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(
        "max_workers = 4\n[databases]\n"
        + "".join(f'{name} = "{text_url(url)}"\n' for name, url in fleet_urls.items())
    )
    report_path = tmp_path / "fleet.json"
    synced = run_cli("sync", "--fleet", str(fleet_file), *common, "--report", str(report_path))
    assert synced.returncode == 1, synced.stderr  # a database was unreachable
    assert "  us: unreachable: " in synced.stdout, synced.stdout
    assert "  eu: 3 tenants: 3 migrated" in synced.stdout, synced.stdout
    report = SyncReport.load(report_path)
    assert {d.name: bool(d.error) for d in report.databases} == {
        "eu": False,
        "us": True,
        "ap": False,
    }
    detail = run_cli("report", str(report_path), "--tenant", "ap/tenant_c4")
    assert detail.returncode == 0 and "ap/tenant_c4: migrated" in detail.stdout, detail.stdout

    for bad, words in [
        (["--url", "eu=x", "--url", text_url(fleet_urls["eu"])], "need a name each"),
        (["--fleet", str(tmp_path / "none.toml")], "cannot read fleet file"),
        (["--fleet", str(fleet_file), "--url", "eu=x"], "by --fleet or by --url, not both"),
    ]:
        failed = run_cli("sync", *bad, *common)
        assert failed.returncode == 2 and words in failed.stderr, failed.stderr


def test_a_fleet_s_passwords_never_reach_the_output_and_the_html_names_a_down_database(
    fleet_urls: dict[str, URL], tmp_path: Path
) -> None:
    password = "s3cret-Fl33t"
    unreachable = f"postgresql+psycopg://bob:{password}@127.0.0.1:1/app"
    html = tmp_path / "fleet.html"
    done = run_cli(
        "sync", f"--url=eu={text_url(fleet_urls['eu'])}", f"--url=mars={unreachable}",
        "--model", "cli_model:metadata_v2", "--tenants", "tenant_%", "--html", str(html),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert password not in done.stdout + done.stderr + html.read_text()
    assert "  mars: unreachable: cannot connect to PostgreSQL at 127.0.0.1:1" in done.stdout
    page = html.read_text()
    assert "1 database unreachable" in page and "mars: 0 tenants" in page, page[:2000]
