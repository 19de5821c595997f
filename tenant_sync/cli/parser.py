"""The argument parser of ``tenant-sync``: its commands, their options and their help."""

from __future__ import annotations

import argparse

from ..versions import library_versions
from ..waves import FailureLimit, limit_from_text, wave_from_text
from .commands import (
    PROG,
    URL_ENVIRONMENT_VARIABLE,
    demo_command,
    history_command,
    list_command,
    report_command,
    signup_command,
    sync_command,
)

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command; each sets ``command`` to its function."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Keep every tenant schema of a PostgreSQL database in step with a SQLAlchemy model.",
        epilog="Exit codes: 0 all tenants fine, 1 some failed or skipped, 2 usage, configuration "
        "or connection error, 130 interrupted.",
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {library_versions()['tenant_sync']}"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="debug logging; tracebacks on error")
    common.add_argument(
        "--no-progress", action="store_true", help="no live progress line, even on a terminal"
    )
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--url",
        action="append",
        metavar="[NAME=]URL",
        help=f"database URL (default: ${URL_ENVIRONMENT_VARIABLE}); repeated as NAME=URL,"
        " a fleet of databases synced in one run",
    )
    db.add_argument(
        "--tenants",
        action="append",
        metavar="NAME|PATTERN",
        help="the tenant schemas: a schema's exact name, else a SQL LIKE pattern (_ and %% are"
        " wildcards: 'tenant\\_%%' for the names that start with tenant_); repeatable, or"
        " comma-separated (default: every schema)",
    )
    db.add_argument(
        "--exclude",
        action="append",
        metavar="NAME|PATTERN",
        help="leave out the selected schemas it names or matches; repeatable, or comma-separated",
    )
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--model",
        required=True,
        metavar="MODULE:ATTR",
        help="the model: a MetaData or declarative Base, e.g. myapp.models:Base",
    )
    _add_session_options(model)
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument(
        "--workers", type=int, default=4, help="tenants synced at once, per database (default 4)"
    )
    run.add_argument(
        "--fleet",
        metavar="FILE",
        help="a TOML file of the fleet's databases: [databases] NAME = URL",
    )
    run.add_argument(
        "--max-workers", type=int, metavar="N", help="tenants synced at once over a whole fleet"
    )
    run.add_argument(
        "--shard",
        metavar="I/N",
        help="only share I (from 0) of N of the tenants, by a stable hash of database and"
        " schema: N runs with I = 0 .. N-1 sync every tenant once",
    )
    run.add_argument(
        "--allow-destructive",
        action="store_true",
        help="apply every class of change, drops included (same as --allow with all four)",
    )
    run.add_argument(
        "--allow",
        metavar="CLASS,...",
        help="classes that apply: safe, data_dependent, rewrite, destructive"
        " (default safe,data_dependent)",
    )
    run.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="CHANGE",
        help="a withheld change (as reports word it, or a glob) to stop warning about; repeatable",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="fail, untouched, every tenant that would still differ from the model",
    )
    run.add_argument(
        "--verify",
        action="store_true",
        help="compare every tenant with the model one by one (slower)",
    )
    run.add_argument(
        "--steps",
        metavar="MODULE:ATTR",
        help="data steps to run, a tenant_sync.Steps (myapp.steps:steps)",
    )
    run.add_argument(
        "--online",
        choices=("auto", "always", "never"),
        default="auto",
        help="lock-safe DDL (CONCURRENTLY, NOT VALID then VALIDATE) for big tables:"
        " auto (tables of --online-min-rows rows or more, the default), always or never",
    )
    run.add_argument(
        "--online-min-rows",
        type=int,
        default=100_000,
        metavar="N",
        help="the fewest rows that make a table big for --online auto (default 100000)",
    )
    _add_rollout_options(run)
    run.add_argument("--report", metavar="PATH", help="write the JSON report")
    run.add_argument("--html", metavar="PATH", help="write the HTML report")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", parents=[common, db, model, run], help="sync every tenant")
    sync.add_argument("--dry-run", action="store_true", help="change nothing; report the SQL")
    sync.set_defaults(command=sync_command)
    pending = argparse.ArgumentParser(add_help=False)
    pending.add_argument("--sql", action="store_true", help="show each change set's SQL")
    pending.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 0 nothing to do, 1 would fail, 3 changes pending, 4 would still differ",
    )
    for name, about in (("plan", "sync --dry-run, change sets first"), ("drift", "what differs")):
        view = commands.add_parser(name, parents=[common, db, model, run, pending], help=about)
        view.set_defaults(command=sync_command, dry_run=True)

    signup = commands.add_parser(
        "signup", parents=[common, model], help="create and build new tenants, as at signup"
    )
    signup.add_argument("--url", help=f"database URL (default: ${URL_ENVIRONMENT_VARIABLE})")
    signup.add_argument("names", nargs="+", metavar="NAME", help="the new tenant schemas")
    signup.add_argument(
        "--steps",
        metavar="MODULE:ATTR",
        help="data steps, a tenant_sync.Steps: those with on_signup='run' run, the others"
        " are recorded as done",
    )
    signup.set_defaults(command=signup_command)

    listing = commands.add_parser("list", parents=[common, db], help="list the tenant schemas")
    listing.add_argument(
        "--model",
        metavar="MODULE:ATTR",
        help="leave its shared schemas out; tell which schemas look like no tenant",
    )
    listing.add_argument(
        "--names", action="store_true", help="only the names of the schemas a sync works on"
    )
    listing.set_defaults(command=list_command)

    history = commands.add_parser(
        "history", parents=[common], help="one tenant's history: the changes syncs made in it"
    )
    history.add_argument("--url", help=f"database URL (default: ${URL_ENVIRONMENT_VARIABLE})")
    history.add_argument("schema", metavar="NAME", help="the tenant schema")
    history.add_argument("--sql", action="store_true", help="each change's SQL")
    history.add_argument("--limit", type=int, metavar="N", help="only the newest N changes")
    history.set_defaults(command=history_command)

    review = commands.add_parser(
        "report", parents=[common], help="review a saved JSON report; report merge A B --out C"
    )
    review.add_argument("path", nargs="+", metavar="PATH", help="a report, or merge and reports")
    review.add_argument("--out", metavar="PATH", help="with merge: write the merged report here")
    which = review.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="failed tenants and their errors")
    which.add_argument("--tenant", metavar="NAME", help="one tenant's operations and error")
    review.add_argument("--sql", action="store_true", help="the SQL of the tenants shown")
    review.add_argument("--html", metavar="PATH", help="also write the report as HTML")
    review.set_defaults(command=report_command)

    demo = commands.add_parser("demo", parents=[common], help="a demo (embedded PostgreSQL)")
    demo.add_argument(
        "--url", help=f"server URL (default: ${URL_ENVIRONMENT_VARIABLE}, else embedded)"
    )
    demo.add_argument("--html", default="demo-report.html", metavar="PATH", help="HTML report")
    demo.set_defaults(command=demo_command)
    return parser


def _add_rollout_options(parser: argparse.ArgumentParser) -> None:
    staged = parser.add_mutually_exclusive_group()
    staged.add_argument(
        "--waves",
        nargs="+",
        type=wave_from_text,
        metavar="WAVE",
        help="sync in waves, each once the one before went well: NAME[,NAME...] (those"
        " tenants), N (until N tenants in all), P%% or 0.F (until that share), e.g."
        " --waves tenant_demo 5%% 100%%",
    )
    staged.add_argument(
        "--canary",
        type=wave_from_text,
        metavar="N|NAME,...",
        help="sync these tenants (a count, or names) first, the rest only if they went well",
    )
    parser.add_argument(
        "--max-failures",
        type=_limit,
        default=0,
        metavar="N|P%",
        help="failed tenants a wave may have for the next to start: a count or a share (default 0)",
    )
    parser.add_argument(
        "--order",
        choices=("name", "size"),
        default="name",
        help="the order waves take tenants in: by name, or smallest first (default name)",
    )


def _limit(text: str) -> FailureLimit:
    try:
        return limit_from_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_session_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds a tenant may wait for a lock (default 5)",
    )
    parser.add_argument(
        "--statement-timeout",
        type=float,
        metavar="S",
        help="seconds a statement may run (default: no limit)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries of a tenant after a transient error (default 2)",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help="also log to this rotating file, shareable by several processes",
    )
