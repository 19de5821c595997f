"""The commands of ``tenant-sync``, each a function of the parsed arguments (see parser.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..coordinator import TenantSync
from ..demo import DEMO_TENANTS, demo_server, format_demo, run_demo
from ..discovery import SchemaItems, check_items, check_tenant_names, select_tenants
from ..engine import connect, make_engine
from ..errors import ConfigurationError
from ..fleet import Fleet
from ..history import read_history
from ..loading import load_model, load_steps
from ..logs import add_shared_log_file
from ..output.change_sets import format_change_sets
from ..output.history import format_history
from ..output.html import write_html
from ..output.progress import LiveProgress
from ..output.selection import format_selection
from ..output.summary import format_sql, format_summary, format_tenant_detail, printable
from ..report import SyncReport, TenantResult
from ..shards import parse_shard
from .fleet import fleet_config, merge_command, plain_urls

__all__ = [
    "EXIT_USAGE",
    "URL_ENVIRONMENT_VARIABLE",
    "demo_command",
    "history_command",
    "list_command",
    "report_command",
    "signup_command",
    "sync_command",
]

#: Where ``--url`` is read from when it is not given.
URL_ENVIRONMENT_VARIABLE = "TENANT_SYNC_DATABASE_URL"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_PENDING, EXIT_DIFFERS = 3, 4

PROG = "tenant-sync"

log = logging.getLogger("tenant_sync.cli")


def sync_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    dry_run = args.dry_run or args.name in ("plan", "drift")
    metadata = load_model(args.model)
    _add_log_file(args.log_file)
    interrupted = False
    fleet = fleet_config(args)
    shard = parse_shard(args.shard) if args.shard else None
    if fleet is not None and _rollout(args)["waves"] is not None:
        raise ConfigurationError("--waves and --canary run on one database, not on a fleet")
    options: dict[str, Any] = dict(
        tenants=_tenants(args),
        exclude=_exclude(args),
        workers=args.workers,
        allow=args.allow,
        allow_destructive=args.allow_destructive,
        accept=args.accept,
        strict=args.strict,
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        retries=args.retries,
        verify=args.verify,
        online=args.online,
        online_min_rows=args.online_min_rows,
        steps=load_steps(args.steps) if args.steps else (),
        on_result=progress,
        model_name=args.model,
        shard=shard,
    )
    ts: TenantSync | Fleet
    if fleet is None:
        ts = TenantSync(_url(args), metadata, **options)
    else:
        ts = Fleet(fleet.databases, metadata, max_workers=fleet.max_workers, **options)
    with ts:
        if progress is not None:
            progress.start(len(ts.list_tenants()))
        try:
            if isinstance(ts, Fleet):
                report = ts.sync_all(dry_run=dry_run)
            else:
                report = ts.sync_all(dry_run=dry_run, **_rollout(args))
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
    if not report.results and not shard:
        print(
            f"{PROG}: no tenant schema matched {_selection_words(args)};"
            f" to create and build new ones: {PROG} signup NAME",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if any(database.error for database in report.databases):
        return EXIT_FAILED  # a database of the fleet was unreachable
    if dry_run and getattr(args, "exit_code", False):
        return _plan_exit_code(report.results, report.cancelled)
    return _exit_code(report.results, report.cancelled)


def _rollout(args: argparse.Namespace) -> dict[str, Any]:
    """``sync_all``'s staging options from ``--waves``/``--canary``, ``--max-failures``, ``--order``."""
    waves = args.waves if args.waves else [args.canary, 1.0] if args.canary else None
    order = "size" if args.order == "size" else None
    return {"waves": waves, "max_failures": args.max_failures, "order": order}


def signup_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    """Create and build each named tenant, as ``TenantSync.sync_tenant`` does at signup."""
    metadata = load_model(args.model)
    _add_log_file(args.log_file)
    with TenantSync(
        _url(args),
        metadata,
        tenants=list(args.names),
        steps=load_steps(args.steps) if args.steps else (),
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        retries=args.retries,
    ) as ts:
        results = [ts.sync_tenant(name) for name in args.names]
    for result in results:
        line = f"{printable(result.schema)}: {result.status} in {result.duration_s:.3f}s"
        if result.error:
            line += f": {printable(result.error)}"
        print(line)
    return _exit_code(results, cancelled=False)


def history_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    """Print one tenant's history: each change a sync made in it, newest first."""
    check_tenant_names([args.schema], ())
    engine, _ = make_engine(_url(args), workers=1)
    try:
        with connect(engine) as conn, conn.begin():
            entries = read_history(conn, args.schema, args.limit)
    finally:
        engine.dispose()
    print(format_history(args.schema, entries, with_sql=args.sql), end="")
    return EXIT_OK


def list_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    """Print each selected schema with the rule that selected it, and each excluded one.

    With ``--model``, its shared schemas are left out and the schemas that look like no
    tenant are marked; without, the selection alone is shown.
    """
    tenants, exclude = _tenants(args), _exclude(args)
    if args.model:
        model = load_model(args.model)
        with TenantSync(_url(args), model, tenants=tenants, exclude=exclude) as ts:
            selection = ts.select_tenants()
    else:
        engine, _ = make_engine(_url(args), workers=1)
        try:
            with connect(engine) as conn, conn.begin():
                selection = select_tenants(conn, tenants, exclude)
        finally:
            engine.dispose()
        for words in selection.unmatched:
            log.warning("%s", words)
    print(format_selection(selection, names_only=args.names), end="")
    return EXIT_OK


def report_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
    if args.path[0] == "merge":
        merged = merge_command(args)
        _save(merged, args.out, args.html)
        return EXIT_FAILED if not merged.ok else _exit_code(merged.results, merged.cancelled)
    if len(args.path) > 1:
        raise ConfigurationError(f"{PROG} report reads one report (report merge A B merges)")
    path = args.path[0]
    try:
        report = SyncReport.load(path)  # ReportFormatError names the file and the fault
    except OSError as exc:
        raise ConfigurationError(f"cannot read report {path}: {exc.strerror or exc}") from exc
    chosen = report.results
    if args.tenant is not None:
        database, slash, schema = args.tenant.rpartition("/")  # a fleet's: DATABASE/SCHEMA
        found = report.get(schema, database) if slash else report.get(args.tenant)
        if found is None:
            raise ConfigurationError(f"no tenant {args.tenant!r} in report {path}")
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
                print(f"-- tenant {printable(result.schema)} ({result.status})")
                print(format_sql(result.sql), end="\n\n")
    elif args.failed:
        for result in chosen:
            print(f"{printable(result.schema)}: {printable(result.error or 'no error recorded')}")
    else:
        print(format_summary(report, color=sys.stdout.isatty(), options=True), end="")
    return _exit_code(chosen, report.cancelled and args.tenant is None)


def demo_command(args: argparse.Namespace, progress: LiveProgress | None) -> int:
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


def _url(args: argparse.Namespace) -> str:
    given = args.url if isinstance(args.url, str) else plain_urls(args)
    if isinstance(args.url, list) and len(args.url) > 1:
        raise ConfigurationError(f"{PROG} {args.name} takes one --url, not a fleet")
    url: str | None = given or os.environ.get(URL_ENVIRONMENT_VARIABLE)
    if not url:
        raise ConfigurationError(f"no database URL: pass --url or set {URL_ENVIRONMENT_VARIABLE}")
    return url


def _tenants(args: argparse.Namespace) -> SchemaItems | None:
    """``--tenants`` as items (each repeated option, split at commas); None if not given."""
    return None if args.tenants is None else SchemaItems(_items(args.tenants, "--tenants"))


def _exclude(args: argparse.Namespace) -> tuple[str, ...]:
    return _items(args.exclude or [], "--exclude")


def _items(values: Sequence[str], option: str) -> tuple[str, ...]:
    return check_items([item.strip() for value in values for item in value.split(",")], option)


def _selection_words(args: argparse.Namespace) -> str:
    tenants, exclude = _tenants(args), _exclude(args)
    words = f"--tenants '{','.join(tenants.items)}'" if tenants else "any schema"
    return f"{words} less --exclude '{','.join(exclude)}'" if exclude else words


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
        print(f"{PROG}: wrote {path}", file=sys.stderr)


def _plan_exit_code(results: Sequence[TenantResult], cancelled: bool) -> int:
    if _exit_code(results, cancelled) != EXIT_OK:
        return EXIT_FAILED
    if any(result.differences for result in results):
        return EXIT_DIFFERS
    return EXIT_PENDING if any(result.operations for result in results) else EXIT_OK


def _exit_code(results: Sequence[TenantResult], cancelled: bool) -> int:
    bad = cancelled or any(result.status in ("failed", "partial", "skipped") for result in results)
    return EXIT_FAILED if bad else EXIT_OK
