"""The ``tenant-sync`` command, run as a real subprocess against the test server.

Each test gets a fresh database; the model comes from ``tests/cli_model.py``, imported by
``--model cli_model:...`` from the current directory (the tests directory).
"""

from __future__ import annotations

import html
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import server_url
from helpers import catalog_snapshot, make_schemas, tables
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import SyncReport, TenantResult, TenantSync

TESTS = Path(__file__).resolve().parent
PASSWORD = "s3cret-Pa55"
UNREACHABLE = f"postgresql+psycopg://bob:{PASSWORD}@127.0.0.1:1/app"
# Log lines on stderr (off a terminal): "15:31:05 INFO tenant a: migrated in ...".
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def start_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = TESTS
) -> subprocess.Popen[str]:
    """Start ``python -m tenant_sync.cli ARGS``, without TENANT_SYNC_DATABASE_URL unless given."""
    environment = {k: v for k, v in os.environ.items() if k != "TENANT_SYNC_DATABASE_URL"}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "tenant_sync.cli", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a started command; return what it printed and its exit code."""
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = TESTS
) -> subprocess.CompletedProcess[str]:
    """Run the command and wait for it."""
    return finish(start_cli(*args, env=env, cwd=cwd))


def text_url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def non_log_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not LOG_LINE.match(line)]


def test_sync_builds_the_tenants_and_writes_report_html_and_log_file(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["tenant_a", "tenant_b", "other"])
    report_path, html_path, log_path = (tmp_path / n for n in ("r.json", "r.html", "sync.log"))
    result = run_cli(
        *("sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v1"),
        *("--tenants", "tenant\\_%", "--workers", "2", "--report", str(report_path)),
        *("--html", str(html_path), "--log-file", str(log_path)),
    )
    assert result.returncode == 0, result.stderr
    assert "Sync of 2 tenants" in result.stdout
    assert re.search(r"^  migrated +2$", result.stdout, re.MULTILINE)
    assert {"accounts", "projects", "tasks"} <= tables(engine, "tenant_a")
    assert tables(engine, "other") == set()
    report = SyncReport.load(report_path)
    assert report.counts["migrated"] == 2 and report.ok
    assert "<html" in html_path.read_text()
    assert "tenant tenant_b: migrated in" in log_path.read_text()
    assert "INFO tenant tenant_a: migrated in" in result.stderr  # off a tty: log lines


def test_verify_flag_compares_every_tenant_alone(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["tenant_a", "tenant_b"])
    sync = ("sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v1")
    assert run_cli(*sync).returncode == 0
    attempts = {}
    for flags in ((), ("--verify",)):
        report_path = tmp_path / f"report{len(flags)}.json"
        result = run_cli(*sync, *flags, "--report", str(report_path))
        assert result.returncode == 0, result.stderr
        report = SyncReport.load(report_path)
        assert report.counts["unchanged"] == 2
        attempts[flags] = [r.attempts for r in report.results]
    # Up to date by the catalog pass alone: no tenant transaction.  With --verify each
    # tenant is opened and compared with the model.
    assert attempts == {(): [0, 0], ("--verify",): [1, 1]}


def test_a_declarative_base_names_the_model(database_url: URL, engine: Engine) -> None:
    make_schemas(engine, ["acme"])
    result = run_cli("sync", "--url", text_url(database_url), "--model", "cli_model:Base")
    assert result.returncode == 0, result.stderr
    assert {"customers", "invoices"} <= tables(engine, "acme")


def test_plan_and_dry_run_change_nothing_and_the_report_shows_the_sql(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["t1", "t2"])
    with TenantSync(database_url, model_v1()) as ts:
        assert ts.sync_all().ok
    before = catalog_snapshot(engine)
    plan_path = tmp_path / "plan.json"
    url = text_url(database_url)

    plan_run = start_cli(
        *("plan", "--url", url, "--model", "cli_model:metadata_v2", "--report", str(plan_path))
    )
    dry_run = start_cli("sync", "--dry-run", "--url", url, "--model", "cli_model:metadata_v2")
    plan, dry = finish(plan_run), finish(dry_run)

    assert plan.returncode == 0 and dry.returncode == 0, plan.stderr + dry.stderr
    for output in (plan.stdout, dry.stdout):
        assert "Dry run of 2 tenants" in output
        assert re.search(r"^  planned +2$", output, re.MULTILINE)
    assert catalog_snapshot(engine) == before

    one_run = start_cli("report", str(plan_path), "--tenant", "t1", "--sql")
    script_run = start_cli("report", str(plan_path), "--sql")
    one, script = finish(one_run), finish(script_run)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("t1: planned in ")
    assert "  [safe] create table labels" in one.stdout
    assert "CREATE TABLE labels" in one.stdout

    assert script.returncode == 0, script.stderr
    assert "-- tenant t1 (planned)" in script.stdout and "-- tenant t2 (planned)" in script.stdout
    assert "ALTER TABLE projects ADD COLUMN description TEXT;" in script.stdout


def test_a_failed_tenant_exits_1_and_the_report_review_shows_it(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["good_1", "bad", "good_2"])
    with TenantSync(database_url, model_v1()) as ts:
        assert ts.sync_all().ok
    # A view where v2 needs a table: "create table labels" fails in this tenant alone.
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW bad.labels AS SELECT 1 AS id"))
    report_path = tmp_path / "sync.json"

    result = run_cli(
        *("sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v2"),
        *("--retries", "0", "--report", str(report_path)),
    )

    assert result.returncode == 1, result.stderr
    assert "Failed tenants (1)" in result.stdout
    assert re.search(r"^  bad: .*already exists", result.stdout, re.MULTILINE)
    assert "ERROR tenant bad: failed" in result.stderr
    assert "labels" in tables(engine, "good_1") and "labels" in tables(engine, "good_2")

    summary, failed, good = map(
        finish,
        [
            start_cli("report", str(report_path)),
            start_cli("report", str(report_path), "--failed"),
            start_cli("report", str(report_path), "--tenant", "good_1"),
        ],
    )
    assert summary.returncode == 1
    assert re.search(r"^  failed +1$", summary.stdout, re.MULTILINE)

    assert failed.returncode == 1
    (line,) = failed.stdout.splitlines()
    assert line.startswith("bad: ") and "already exists" in line

    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("good_1: migrated in ")
    assert "  [safe] create table labels" in good.stdout


def test_list_prints_one_tenant_per_line_with_the_url_from_the_environment(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["tenant_b", "tenant_a", "other"])
    env = {"TENANT_SYNC_DATABASE_URL": text_url(database_url)}

    every, matching = map(
        finish,
        [
            start_cli("list", "--names", env=env),
            start_cli("list", "--names", "--tenants", "tenant\\_%", env=env),
        ],
    )

    assert every.returncode == 0 and matching.returncode == 0, every.stderr + matching.stderr
    assert every.stdout.splitlines() == ["other", "tenant_a", "tenant_b"]
    assert matching.stdout.splitlines() == ["tenant_a", "tenant_b"]


def make_analytics(engine: Engine) -> None:
    """Tenants (one built, one new), ``tenants_backup``, and ``analytics`` with a table and rows."""
    make_schemas(engine, ["tenant_acme", "tenant_globex", "tenants_backup", "analytics"])
    with TenantSync(engine, model_v1(), tenants=["tenant_acme"]) as ts:
        assert ts.sync_all().ok
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE analytics.events (id int PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO analytics.events VALUES (1), (2), (3)"))


def test_list_shows_the_rule_that_selected_each_schema_and_what_was_excluded(
    database_url: URL, engine: Engine
) -> None:
    make_analytics(engine)
    url = text_url(database_url)
    every, chosen, names = map(
        finish,
        [
            start_cli("list", "--url", url, "--model", "cli_model:metadata_v1"),
            start_cli(
                *("list", "--url", url, "--tenants", "tenant\\_%", "--tenants", "analytics"),
                *("--exclude", "tenant_globex,nobody"),
            ),
            start_cli(
                *("list", "--url", url, "--model", "cli_model:metadata_v1", "--names"),
                *("--exclude", "tenants\\_%"),
            ),
        ],
    )

    assert every.returncode == chosen.returncode == names.returncode == 0, every.stderr
    assert every.stdout.splitlines() == [
        "analytics       every schema (no --tenants) — not a tenant: holds only tables the"
        " model does not know (events)",
        "tenant_acme     every schema (no --tenants)",
        "tenant_globex   every schema (no --tenants)",
        "tenants_backup  every schema (no --tenants)",
    ]
    assert chosen.stdout.splitlines() == [
        "tenant_acme    pattern 'tenant\\_%'",
        "analytics      name",
        "tenant_globex  pattern 'tenant\\_%' — excluded by --exclude 'tenant_globex'",
    ]
    assert "WARNING exclude item 'nobody' matches no selected schema" in chosen.stderr
    assert names.stdout.splitlines() == ["tenant_acme", "tenant_globex"]


def test_tenants_is_repeatable_and_takes_commas_each_item_a_name_or_a_pattern(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["tenant_a", "tenant_b", "tenantxa", "tenants_backup", "other"])
    url = text_url(database_url)
    runs = [
        ("--tenants", "tenant_b", "--tenants", "other"),
        ("--tenants", "tenant_b, other"),
        ("--tenants", "tenant_a"),  # a name: tenantxa is not matched
        ("--tenants", "tenant\\_%", "--exclude", "%_b"),
        ("--tenants", "tenant_%"),  # a pattern: _ matches any one character
        ("--tenants", "tenant_z,other"),  # tenant_z exists nowhere: a pattern, no match
    ]
    started = [start_cli("list", "--names", "--url", url, *args) for args in runs]
    results = [finish(process) for process in started]

    assert [r.returncode for r in results] == [0] * len(runs), [r.stderr for r in results]
    assert [r.stdout.split() for r in results] == [
        ["tenant_b", "other"],
        ["tenant_b", "other"],
        ["tenant_a"],
        ["tenant_a"],
        ["tenant_a", "tenant_b", "tenants_backup", "tenantxa"],
        ["other"],
    ]
    assert "WARNING tenants item 'tenant_z' matches no schema" in results[-1].stderr


def test_sync_without_tenants_leaves_a_schema_of_other_tables_alone_unless_it_is_named(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_analytics(engine)
    url = text_url(database_url)
    report_path = tmp_path / "sync.json"
    sync = ("sync", "--url", url, "--model", "cli_model:metadata_v1")

    left = run_cli(*sync, "--allow-destructive", "--report", str(report_path))

    assert left.returncode == 1, left.stderr  # a skipped schema: exit 1, as documented
    reason = (
        "holds 1 table the model does not know (events) and none of the model's tables;"
        " not treated as a tenant (name it in --tenants / tenants= to sync it)"
    )
    assert f"WARNING schema analytics {reason}" in left.stderr
    assert f"Skipped tenants (1)\n  analytics: {reason}\n" in left.stdout
    assert tables(engine, "analytics") == {"events"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics.events")).scalar() == 3
    report = SyncReport.load(report_path)
    assert report.get("analytics") == TenantResult("analytics", "skipped", error=reason, attempts=0)
    assert {r.schema: r.status for r in report.results} == {
        "analytics": "skipped",
        "tenant_acme": "unchanged",
        "tenant_globex": "migrated",
        "tenants_backup": "migrated",
    }

    excluded = run_cli(*sync, "--exclude", "analytics")
    named = run_cli(*sync, "--tenants", "tenant\\_%,analytics")

    assert excluded.returncode == 0, excluded.stderr
    assert "analytics" not in excluded.stdout + excluded.stderr.replace("--exclude", "")
    assert named.returncode == 0, named.stderr
    assert re.search(r"^  migrated +1$", named.stdout, re.MULTILINE)  # analytics alone
    assert {"accounts", "events", "projects", "tasks"} <= tables(engine, "analytics")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics.events")).scalar() == 3


def _bad_login_url() -> str:
    return text_url(server_url().set(username="ts_no_such_role", password=PASSWORD))


# Files that are not reports, for ``report``: each is written to a temporary directory
# and "FILE:name" in a case's arguments replaced by its path.
NOT_REPORTS = {
    "notes.txt": b"not a report\n",
    "list.json": b"[1, 2, 3]",
    "other.json": b'{"name": "a JSON object, but no report"}',
    "future.json": b'{"format_version": 99, "results": []}',
}

# Case name -> (arguments, what the one error line says).  The bad-login URL needs the
# test server's address, so "BAD-LOGIN" is replaced when the case runs, as "SERVER" is by
# the test server's own URL.
ERROR_CASES: dict[str, tuple[list[str], str]] = {
    "no-url": (["list"], "no database URL: pass --url or set TENANT_SYNC_DATABASE_URL"),
    "unreachable": (["list", "--url", UNREACHABLE], "cannot connect to PostgreSQL at 127.0.0.1:1"),
    "bad-login": (["sync", "--model", "cli_model:Base", "--url", "BAD-LOGIN"], "cannot connect"),
    "malformed-url": (["list", "--url", f"postgresql://bob:{PASSWORD}@db:port/app"], "malformed"),
    "not-postgresql": (["list", "--url", f"mysql://bob:{PASSWORD}@db/app"], "needs PostgreSQL"),
    "no-module": (["sync", "--url", UNREACHABLE, "--model", "no_such:Base"], "no module named"),
    "no-attribute": (["sync", "--url", UNREACHABLE, "--model", "cli_model:Nope"], "no attribute"),
    "not-a-model": (
        ["sync", "--url", UNREACHABLE, "--model", "cli_model:not_a_model"],
        "expected a SQLAlchemy MetaData or declarative base, got int",
    ),
    "no-colon": (["sync", "--url", UNREACHABLE, "--model", "cli_model"], "module:attribute"),
    "bad-option": (
        ["sync", "--url", UNREACHABLE, "--model", "cli_model:Base", "--workers", "0"],
        "workers must be a positive integer",
    ),
    "no-report": (
        ["report", "no-such-report.json"],
        "cannot read report no-such-report.json: No such file or directory",
    ),
    "report-is-a-directory": (["report", "."], "cannot read report .: Is a directory"),
    "report-not-json": (["report", "FILE:notes.txt"], "notes.txt: not JSON (Expecting value"),
    "report-json-list": (["report", "FILE:list.json"], "list.json: not a tenant_sync report"),
    "report-other-json": (["report", "FILE:other.json"], "other.json: not a tenant_sync report"),
    "report-unknown-version": (
        ["report", "FILE:future.json"],
        "future.json: unsupported report format version 99",
    ),
    "empty-tenants-item": (
        ["list", "--url", UNREACHABLE, "--tenants", "a,,b"],
        "--tenants: an item is empty",
    ),
    "trailing-escape": (
        ["sync", "--url", UNREACHABLE, "--model", "cli_model:Base", "--exclude", "x\\"],
        "--exclude: LIKE pattern 'x\\' ends with the escape character \\; write \\\\",
    ),
    "system-schema": (
        ["list", "--url", "SERVER", "--tenants", "tenant\\_%,pg_catalog"],
        "'pg_catalog' is a system schema, not a tenant",
    ),
}


@pytest.fixture(scope="module")
def error_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every error case, run at once (each is a fresh Python: about a second apiece)."""
    files = tmp_path_factory.mktemp("not-reports")
    for name, content in NOT_REPORTS.items():
        (files / name).write_bytes(content)
    started = {}
    for case, (args, _) in ERROR_CASES.items():
        args = [_bad_login_url() if arg == "BAD-LOGIN" else arg for arg in args]
        args = [str(files / arg[5:]) if arg.startswith("FILE:") else arg for arg in args]
        args = [text_url(server_url()) if arg == "SERVER" else arg for arg in args]
        started[case] = start_cli(*args)
    return {case: finish(process) for case, process in started.items()}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_configuration_errors_exit_2_with_one_line_and_the_password_masked(
    case: str, error_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result, message = error_runs[case], ERROR_CASES[case][1]
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = non_log_lines(result.stderr)
    assert line.startswith("tenant-sync: error: ") and message in line, line
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_usage_errors_exit_2() -> None:
    result = run_cli("sync", "--url", UNREACHABLE)  # no --model
    assert result.returncode == 2
    assert "usage: tenant-sync sync" in result.stderr and "--model" in result.stderr


def test_debug_adds_the_traceback() -> None:
    result = run_cli("sync", "--debug", "--url", UNREACHABLE, "--model", "no_such_module:Base")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("tenant-sync: error: --model")


def test_signup_creates_and_builds_and_a_sync_that_matches_nothing_exits_1(
    database_url: URL, engine: Engine
) -> None:
    url = text_url(database_url)
    missed = run_cli("sync", "--url", url, "--model", "cli_model:metadata_v1", "--tenants", "new_%")
    signed = run_cli("signup", "--url", url, "--model", "cli_model:metadata_v1", "new_a", "new_b")
    again = run_cli("sync", "--url", url, "--model", "cli_model:metadata_v1", "--tenants", "new_%")
    version = run_cli("--version")

    assert missed.returncode == 1, missed
    assert "no tenant schema matched --tenants 'new_%'" in missed.stderr
    assert "tenant-sync signup NAME" in missed.stderr
    assert missed.stderr.count("tenants item 'new_%' matches no schema") == 1, "warned once"
    assert signed.returncode == 0, signed.stderr
    assert [line.split(":")[0] for line in signed.stdout.splitlines()] == ["new_a", "new_b"]
    assert all(": migrated in " in line for line in signed.stdout.splitlines())
    assert again.returncode == 0 and "unchanged 2" in " ".join(again.stdout.split())
    assert version.returncode == 0
    assert version.stdout == f"tenant-sync {importlib.metadata.version('tenant_sync')}\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "0"], "--workers must be a positive integer, got 0"),
        (["--lock-timeout", "-1"], "--lock-timeout must be a positive number of seconds"),
        (["--retries", "-1"], "--retries must be an integer >= 0, got -1"),
        (["--statement-timeout", "0"], "--statement-timeout must be a positive number of seconds"),
    ],
)
def test_bad_options_are_named_by_their_flag(
    database_url: URL, arguments: list[str], message: str
) -> None:
    done = run_cli(
        "plan", "--url", text_url(database_url), "--model", "cli_model:metadata_v1", *arguments
    )

    assert done.returncode == 2
    (line,) = non_log_lines(done.stderr)
    assert line.startswith(f"tenant-sync: error: {message}"), done.stderr


def test_the_reports_say_what_the_run_was_run_against_and_never_show_the_password(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["tenant_a", "tenant_b"])
    url = text_url(database_url.set(password=PASSWORD))  # the server's trust auth ignores it
    masked = database_url.set(password=PASSWORD).render_as_string(hide_password=True)
    report_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    sync = run_cli(
        *("plan", "--url", url, "--model", "cli_model:metadata_v1", "--workers", "3"),
        *("--allow", "safe", "--accept", "drop column *.legacy", "--lock-timeout", "2"),
        *("--report", str(report_path), "--html", str(html_path)),
    )
    review = run_cli("report", str(report_path), "--html", str(tmp_path / "again.html"))

    assert sync.returncode == 0 and review.returncode == 0, sync.stderr + review.stderr
    outputs = [sync.stdout, sync.stderr, review.stdout, review.stderr]
    outputs += [path.read_text() for path in (report_path, html_path, tmp_path / "again.html")]
    assert all(PASSWORD not in text for text in outputs)
    run = SyncReport.load(report_path).run
    assert run is not None and run.database == masked and run.model == "cli_model:metadata_v1"
    assert run.options["workers"] == 3 and run.options["allow"] == ["safe"]
    assert run.options["accept"] == ["drop column *.legacy"] and run.options["lock_timeout"] == 2
    header = f"  database  {masked} (PostgreSQL {run.versions['postgresql']})"
    for output in (sync.stdout, review.stdout):
        assert header in output.splitlines()
        assert "  model     cli_model:metadata_v1 (fingerprint " in output
    assert "options" not in sync.stdout  # typed on the command line: not repeated
    options = " ".join(review.stdout.split())
    assert (
        "options dry_run yes, tenants every schema, exclude none, workers 3, allow [safe],"
        in options
    )
    assert "accept ['drop column *.legacy'], strict no, lock_timeout 2.0," in options
    assert html.escape(masked) in (tmp_path / "again.html").read_text()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "nosuchmodule:steps",
            "tenant-sync: error: --steps nosuchmodule:steps: no module named 'nosuchmodule'",
        ),
        (
            "cli_model:metadata_v1",
            "tenant-sync: error: --steps cli_model:metadata_v1: expected a tenant_sync.Steps, got MetaData",
        ),
        (
            "cli_model",
            "tenant-sync: error: --steps must be module:attribute (myapp.steps:steps), got 'cli_model'",
        ),
    ],
)
def test_bad_steps_option_is_one_line_and_exit_2(
    database_url: URL, spec: str, message: str
) -> None:
    result = run_cli(
        *("sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v1"),
        *("--steps", spec),
    )
    assert result.returncode == 2
    assert non_log_lines(result.stderr)[0].startswith(message), result.stderr


def test_signup_with_steps_runs_the_on_signup_ones_and_records_the_others(
    database_url: URL, engine: Engine
) -> None:
    url = text_url(database_url)
    signed = run_cli(
        *("signup", "--url", url, "--model", "cli_model:Base", "--steps", "cli_model:steps"),
        "new_a",
    )
    assert signed.returncode == 0, signed.stderr
    with engine.connect() as conn:
        emails = conn.execute(sa.text("SELECT email FROM new_a.customers")).scalars().all()
        recorded = (
            conn.execute(
                sa.text(
                    "SELECT step FROM new_a.tenant_sync_history WHERE step IS NOT NULL ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    assert emails == ["owner@example.com"]
    assert recorded == ["backfill something old tenants lack", "seed the first customer"]
