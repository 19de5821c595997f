"""The ``tenant-sync`` command: a thin layer over :class:`~tenant_sync.TenantSync`.

Also run as ``python -m tenant_sync``.

::

    tenant-sync sync   --url URL --model myapp.models:Base [--tenants 'tenant_%'] [--report r.json]
    tenant-sync plan   --url URL --model myapp.models:Base [--sql] [--exit-code]  # sync --dry-run
    tenant-sync drift  --url URL --model myapp.models:Base [--exit-code]  # what differs, by shape
    tenant-sync list   --url URL [--tenants PATTERN]
    tenant-sync report r.json [--failed | --tenant NAME] [--sql] [--html r.html]
    tenant-sync demo   [--url URL] [--html demo-report.html]

Exit codes: 0 every tenant fine, 1 some tenant failed (or was skipped), 2 usage,
configuration or connection error, 130 interrupted.  ``plan`` and ``drift`` with
``--exit-code``: 0 nothing to do, 1 some tenant would fail, 3 changes pending, 4 some
tenant would still differ from the model after a sync.  Errors are one line on stderr,
password masked; ``--debug`` adds the traceback.  ``--url`` defaults to
``TENANT_SYNC_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from collections.abc import Sequence

import sqlalchemy as sa

from .coordinator import TenantSync
from .demo import DEMO_TENANTS, demo_server, format_demo, run_demo
from .discovery import list_tenants
from .engine import connect, make_engine
from .errors import ConfigurationError, TenantSyncError
from .loading import load_model
from .logs import add_shared_log_file
from .output.change_sets import format_change_sets
from .output.html import write_html
from .output.progress import LiveProgress, ProgressLogHandler
from .output.summary import format_sql, format_summary, format_tenant_detail
from .report import SyncReport, TenantResult

__all__ = ["URL_ENVIRONMENT_VARIABLE", "main"]

#: Where ``--url`` is read from when it is not given.
URL_ENVIRONMENT_VARIABLE = "TENANT_SYNC_DATABASE_URL"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_PENDING, EXIT_DIFFERS = 3, 4

_PROG = "tenant-sync"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STDERR_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tenant-sync`` with ``argv`` (default: the command line); return the exit code."""
    args = _parser().parse_args(argv)  # exits 2 with a usage line on bad arguments
    progress = LiveProgress(sys.stderr) if _live(args) else None
    _configure_logging(args.debug, progress)
    try:
        return int(args.command(args, progress))
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if progress is not None:
            progress.clear()
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, TenantSyncError):
            message = str(exc)
        else:
            message = f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)"
        first_line = (message.strip().splitlines() or [""])[0]
        print(f"{_PROG}: error: {_mask(first_line, args)}", file=sys.stderr)
        return EXIT_USAGE


def _sync(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    dry_run = args.dry_run or args.name in ("plan", "drift")
    metadata = load_model(args.model)
    _add_log_file(args.log_file)
    interrupted = False
    with TenantSync(
        _url(args),
        metadata,
        tenants=args.tenants,
        workers=args.workers,
        allow=args.allow,
        allow_destructive=args.allow_destructive,
        accept=args.accept,
        strict=args.strict,
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        retries=args.retries,
        verify=args.verify,
        on_result=progress,
    ) as ts:
        if progress is not None:
            progress.start(len(ts.list_tenants()))
        try:
            report = ts.sync_all(dry_run=dry_run)
        except KeyboardInterrupt:
            if ts.last_report is None:
                raise
            report, interrupted = ts.last_report, True
        finally:
            if progress is not None:
                progress.clear()
    if dry_run:
        print(format_change_sets(report.results, with_sql=getattr(args, "sql", False)), end="")
    print(format_summary(report, color=sys.stdout.isatty()), end="")
    _save(report, args.report, args.html)
    if interrupted:
        return EXIT_INTERRUPTED
    if dry_run and getattr(args, "exit_code", False):
        return _plan_exit_code(report.results, report.cancelled)
    return _exit_code(report.results, report.cancelled)


def _list(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    if args.model:
        with TenantSync(_url(args), load_model(args.model), tenants=args.tenants) as ts:
            names = ts.list_tenants()
    else:
        engine, _ = make_engine(_url(args), workers=1)
        try:
            with connect(engine) as conn, conn.begin():
                names = list_tenants(conn, args.tenants, shared_schemas=())
        finally:
            engine.dispose()
    for name in names:
        print(_printable(name))
    return EXIT_OK


def _report(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    try:
        report = SyncReport.load(args.path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigurationError(f"cannot read report {args.path}: {reason}") from exc
    chosen = report.results
    if args.tenant is not None:
        found = report.get(args.tenant)
        if found is None:
            raise ConfigurationError(f"no tenant {args.tenant!r} in report {args.path}")
        chosen = [found]
    elif args.failed:
        chosen = report.failed()
    if args.html:
        _save(report, None, args.html)
    if args.tenant is not None:
        print(format_tenant_detail(chosen[0], args.sql))
    elif args.sql:
        for result in chosen:
            if result.sql:
                print(f"-- tenant {_printable(result.schema)} ({result.status})")
                print(format_sql(result.sql), end="\n\n")
    elif args.failed:
        for result in chosen:
            print(f"{_printable(result.schema)}: {_printable(result.error or 'no error recorded')}")
    else:
        print(format_summary(report, color=sys.stdout.isatty()), end="")
    return _exit_code(chosen, report.cancelled and args.tenant is None)


def _demo(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    url = args.url or os.environ.get(URL_ENVIRONMENT_VARIABLE)
    with demo_server(url) as (server_url, server):
        pid = server.pid if server is not None else None
        if server is not None:
            print(f"Embedded PostgreSQL started (pid {pid}) in {server.directory}")
        if progress is not None:
            progress.start(len(DEMO_TENANTS))
        try:
            plan, report = run_demo(server_url, on_result=progress)
        finally:
            if progress is not None:
                progress.clear()
    print(format_demo(plan, report), end="")
    _save(report, None, args.html)
    if pid is not None:
        print(f"Embedded PostgreSQL stopped (pid {pid}); its directory is removed")
    return _exit_code(report.results, report.cancelled)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Keep every tenant schema of a PostgreSQL database in step with a SQLAlchemy model.",
        epilog="Exit codes: 0 all tenants fine, 1 some failed or skipped, 2 usage, configuration "
        "or connection error, 130 interrupted.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="debug logging; tracebacks on error")
    common.add_argument(
        "--no-progress", action="store_true", help="no live progress line, even on a terminal"
    )
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--url", help=f"database URL (default: ${URL_ENVIRONMENT_VARIABLE})")
    db.add_argument("--tenants", metavar="PATTERN", help="SQL LIKE pattern of tenant schemas")
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument(
        "--model",
        required=True,
        metavar="MODULE:ATTR",
        help="the model: a MetaData or declarative Base, e.g. myapp.models:Base",
    )
    run.add_argument("--workers", type=int, default=4, help="tenants synced at once (default 4)")
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
        "--lock-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds a tenant may wait for a lock (default 5)",
    )
    run.add_argument(
        "--statement-timeout",
        type=float,
        metavar="S",
        help="seconds a statement may run (default: no limit)",
    )
    run.add_argument(
        "--retries",
        type=int,
        default=2,
        help="retries of a tenant after a transient error (default 2)",
    )
    run.add_argument(
        "--verify",
        action="store_true",
        help="compare every tenant with the model one by one (slower)",
    )
    run.add_argument("--report", metavar="PATH", help="write the JSON report")
    run.add_argument("--html", metavar="PATH", help="write the HTML report")
    run.add_argument(
        "--log-file",
        metavar="PATH",
        help="also log to this rotating file, shareable by several processes",
    )
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    sync = commands.add_parser("sync", parents=[common, db, run], help="sync every tenant")
    sync.add_argument("--dry-run", action="store_true", help="change nothing; report the SQL")
    sync.set_defaults(command=_sync)
    pending = argparse.ArgumentParser(add_help=False)
    pending.add_argument("--sql", action="store_true", help="show each change set's SQL")
    pending.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 0 nothing to do, 1 would fail, 3 changes pending, 4 would still differ",
    )
    for name, about in (("plan", "sync --dry-run, change sets first"), ("drift", "what differs")):
        view = commands.add_parser(name, parents=[common, db, run, pending], help=about)
        view.set_defaults(command=_sync, dry_run=True)

    listing = commands.add_parser("list", parents=[common, db], help="list the tenant schemas")
    listing.add_argument("--model", metavar="MODULE:ATTR", help="leave its shared schemas out")
    listing.set_defaults(command=_list)

    review = commands.add_parser("report", parents=[common], help="review a saved JSON report")
    review.add_argument("path", metavar="PATH")
    which = review.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="failed tenants and their errors")
    which.add_argument("--tenant", metavar="NAME", help="one tenant's operations and error")
    review.add_argument("--sql", action="store_true", help="the SQL of the tenants shown")
    review.add_argument("--html", metavar="PATH", help="also write the report as HTML")
    review.set_defaults(command=_report)

    demo = commands.add_parser("demo", parents=[common], help="a demo (embedded PostgreSQL)")
    demo.add_argument(
        "--url", help=f"server URL (default: ${URL_ENVIRONMENT_VARIABLE}, else embedded)"
    )
    demo.add_argument("--html", default="demo-report.html", metavar="PATH", help="HTML report")
    demo.set_defaults(command=_demo)
    return parser


def _live(args: argparse.Namespace) -> bool:
    return (
        args.name in ("sync", "plan", "drift", "demo")
        and not args.no_progress
        and sys.stderr.isatty()
    )


def _configure_logging(debug: bool, progress: LiveProgress | None) -> None:
    """Log tenant_sync to stderr: INFO off a terminal; above a live progress line, WARNING."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if progress is None else ProgressLogHandler(progress)
    )
    handler.setFormatter(logging.Formatter(_STDERR_FORMAT, "%H:%M:%S"))
    level = logging.DEBUG if debug else logging.INFO if progress is None else logging.WARNING
    handler.setLevel(level)
    handler.name = _PROG
    logger = logging.getLogger("tenant_sync")
    for old in [h for h in logger.handlers if h.name == _PROG]:  # main() run again in-process
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(min(level, logging.INFO))  # INFO still reaches a --log-file


def _url(args: argparse.Namespace) -> str:
    url: str | None = args.url or os.environ.get(URL_ENVIRONMENT_VARIABLE)
    if not url:
        raise ConfigurationError(f"no database URL: pass --url or set {URL_ENVIRONMENT_VARIABLE}")
    return url


def _add_log_file(path: str | None) -> None:
    if path:
        try:
            add_shared_log_file(path)
        except OSError as exc:
            raise ConfigurationError(f"cannot open log file {path}: {exc.strerror}") from exc


def _save(report: SyncReport, json_path: str | None, html_path: str | None) -> None:
    for path, write in ((json_path, report.write), (html_path, lambda p: write_html(report, p))):
        if not path:
            continue
        try:
            write(path)
        except OSError as exc:
            raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
        print(f"{_PROG}: wrote {path}", file=sys.stderr)


def _plan_exit_code(results: Sequence[TenantResult], cancelled: bool) -> int:
    if _exit_code(results, cancelled) != EXIT_OK:
        return EXIT_FAILED
    if any(result.differences for result in results):
        return EXIT_DIFFERS
    return EXIT_PENDING if any(result.operations for result in results) else EXIT_OK


def _exit_code(results: Sequence[TenantResult], cancelled: bool) -> int:
    bad = cancelled or any(result.status in ("failed", "skipped") for result in results)
    return EXIT_FAILED if bad else EXIT_OK


def _printable(text: str) -> str:
    # Names and errors come from the database: no control characters to the terminal.
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _mask(text: str, args: argparse.Namespace) -> str:
    url = getattr(args, "url", None) or os.environ.get(URL_ENVIRONMENT_VARIABLE)
    try:
        password = sa.make_url(url).password if url else None
    except Exception:  # an unparseable URL: its password cannot be found, so mask it whole
        return text.replace(url or "\0", "<database URL>")
    return text.replace(str(password), "***") if password else text


if __name__ == "__main__":
    raise SystemExit(main())
