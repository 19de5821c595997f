"""A report's header (``SyncReport.run``): what a run was run against, and how.

The runs are real, against the test server, through a URL with a password (the server's
trust authentication ignores it): the header must name the database with the password
masked, and the password must show nowhere, in JSON, HTML or the terminal summary.
"""

from __future__ import annotations

import html
import json
from importlib.metadata import version
from pathlib import Path

import cli_model
import pytest
import sqlalchemy as sa
from helpers import make_schemas
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import ReportFormatError, RunInfo, SyncReport, TenantResult, TenantSync
from tenant_sync.output.html import render_html
from tenant_sync.output.summary import format_summary

PASSWORD = "hdr-S3cret-pw"


@pytest.fixture
def password_url(database_url: URL, engine: Engine) -> URL:
    """The test database's URL with a password in it, and two tenants there."""
    make_schemas(engine, ["tenant_a", "tenant_b", "other"])
    return database_url.set(password=PASSWORD)


def test_the_header_names_the_database_masked_the_model_versions_and_options(
    password_url: URL, engine: Engine
) -> None:
    with TenantSync(
        password_url,
        cli_model.metadata_v1,
        tenants="tenant\\_%",
        exclude=["tenant\\_old%"],
        workers=2,
        allow_destructive=True,
        accept=["drop column *.legacy"],
        strict=True,
        lock_timeout=3,
        statement_timeout=60,
        retries=1,
    ) as ts:
        report = ts.sync_all(dry_run=True)
    run = report.run
    assert run is not None
    assert run.database == password_url.render_as_string(hide_password=True)
    assert PASSWORD not in run.database and ":***@" in run.database
    assert run.model == "cli_model:metadata_v1"
    assert len(run.model_fingerprint) == 32
    with engine.connect() as conn:
        server = conn.execute(sa.text("SHOW server_version")).scalar_one()
    assert run.versions == {
        "tenant_sync": version("tenant_sync"),
        "alembic": version("alembic"),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "postgresql": str(server).split()[0],
    }
    assert run.options == {
        "dry_run": True,
        "tenants": "tenant\\_%",
        "exclude": ["tenant\\_old%"],
        "workers": 2,
        "allow": ["safe", "data_dependent", "rewrite", "destructive"],
        "allow_destructive": True,
        "accept": ["drop column *.legacy"],
        "strict": True,
        "lock_timeout": 3,
        "statement_timeout": 60,
        "retries": 1,
        "retry_backoff": 0.2,
        "version_table": "tenant_sync_version",
        "verify": False,
        "online": "auto",
        "online_min_rows": 100000,
    }


def test_the_header_round_trips_through_json_and_no_output_shows_the_password(
    password_url: URL, tmp_path: Path
) -> None:
    with TenantSync(password_url, cli_model.Base, tenants=["tenant_a", "tenant_b"]) as ts:
        report = ts.sync_all()
    assert report.run is not None and report.run.model == "cli_model:Base"
    assert report.run.options["tenants"] == ["tenant_a", "tenant_b"]
    assert report.run.options["allow"] == ["safe", "data_dependent"]
    assert report.run.options["allow_destructive"] is False

    loaded = SyncReport.load(report.write(tmp_path / "r.json"))
    assert loaded == report and loaded.run == report.run
    assert json.loads(report.to_json())["run"]["database"] == report.run.database

    summary = format_summary(report, options=True)
    outputs = {"json": report.to_json(), "html": render_html(report), "summary": summary}
    for name, text in outputs.items():
        assert PASSWORD not in text, name
        shown = html.escape(report.run.database) if name == "html" else report.run.database
        assert shown in text, name
    assert (
        f"  model     cli_model:Base (fingerprint {report.run.model_fingerprint[:12]})" in summary
    )
    assert f"psycopg {version('psycopg')}" in summary
    assert "tenants ['tenant_a', 'tenant_b']" in summary and "  options   dry_run no," in summary
    assert "options" not in format_summary(report)  # after a run: the header in brief


def test_the_model_is_named_as_given_or_as_the_module_global_that_holds_it(
    password_url: URL,
) -> None:
    cases = {
        "cli_model:Base.metadata": {"metadata": cli_model.Base.metadata},
        "cli_model:metadata_v2": {"metadata": cli_model.metadata_v2},
        "myapp.models:Base": {"metadata": cli_model.Base, "model_name": "myapp.models:Base"},
        "a MetaData of 4 tables (accounts, projects, public.plans, tasks)": {
            "metadata": model_v1()  # made by a function: no module holds it
        },
    }
    for expected, arguments in cases.items():
        with TenantSync(password_url, **arguments) as ts:
            assert ts.run_info().model == expected


def test_a_signup_report_can_carry_the_header(password_url: URL) -> None:
    with TenantSync(password_url, cli_model.metadata_v1) as ts:
        results = [ts.sync_tenant(name) for name in ("new_a", "new_b")]
        report = SyncReport(results, run=ts.run_info())
    assert report.ok and report.run is not None
    assert report.run.options["tenants"] is None and report.run.options["dry_run"] is False
    assert "tenants every schema," in format_summary(report, options=True)


def test_a_report_without_a_header_still_loads(tmp_path: Path) -> None:
    written_before = {
        "format_version": 1,
        "dry_run": False,
        "started_at": "2024-05-01T10:00:00+00:00",
        "finished_at": "2024-05-01T10:00:01+00:00",
        "duration_s": 1.0,
        "cancelled": False,
        "note": None,
        "ok": True,
        "counts": {"migrated": 1},
        "results": [{"schema": "t1", "status": "migrated", "operations": ["create table a"]}],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(written_before))
    report = SyncReport.load(path)
    assert report.run is None and report.results == [
        TenantResult("t1", "migrated", operations=["create table a"])
    ]
    assert "database" not in format_summary(report, options=True)
    assert json.loads(report.to_json())["run"] is None


def test_a_header_of_unknown_keys_and_missing_ones_still_reads() -> None:
    run = RunInfo.from_dict({"database": "postgresql://db/app", "model": "m:Base", "later": 1})
    assert run == RunInfo("postgresql://db/app", "m:Base")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"hello", "not JSON (Expecting value"),
        (b"\xff\xfe", "not JSON (not UTF-8 text)"),
        (b"[1, 2]", "not a tenant_sync report"),
        (b'{"tenants": []}', "not a tenant_sync report"),
        (b'{"format_version": 99, "results": []}', "unsupported report format version 99"),
        (b'{"format_version": 1, "results": {}}', "its results are not a list"),
        (b'{"format_version": 1, "results": [{"schema": "a"}]}', "result 0 has no known status"),
        (b'{"format_version": 1, "results": [], "run": []}', "run header is not an object"),
    ],
)
def test_a_file_that_is_not_a_report_is_refused_in_one_line(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ReportFormatError) as caught:
        SyncReport.load(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read report {path}: ") and reason in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)
