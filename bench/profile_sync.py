"""Where a tenant_sync run spends its time: round trips, queries, Python functions.

::

    python bench/profile_sync.py --tenants 1000 [--scenario noop|change] \\
        [--profile-sample 200] [--keep] [--tenant-sync-ref HEAD]

Builds N tenants with tenant_sync (untimed): at v2 for ``noop``, at v1 for ``change``
(``--reuse`` skips this when the database ``bench_profile_n<N>`` is still there from a
``--keep`` run of the same scenario).  Then, for ``noop``:

1. ``--warmup`` untimed no-op runs, then a timed no-op ``sync_all()`` (default
   workers), counting every statement sent and its client-side time (execute until
   the result is in), grouped by statement;
2. ``sync_all()`` again under cProfile, which sees the calling thread only (the
   discovery and catalog pass, gathering results), not the worker threads;
3. ``sync_tenant()`` on ``--profile-sample`` tenants one after another in this thread
   under cProfile: the per-tenant path (Alembic autogenerate), as run for a tenant
   whose shape is new, or at signup.

For ``change``: first the inside of the round trips, which SQLAlchemy's events don't
see (each tenant's SQL goes as one batch): a ``sync_all()`` whose batch sender records
each tenant's statements instead of sending them (so the tenants stay at v1), then
``--replay`` of those trips one after another on one connection, each statement timed
on its own and each trip rolled back (the session's stamp function made beforehand,
as a committed trip leaves it); then one real ``sync_all()`` to v2, with the
statement counts of 1 and the calling thread's cProfile of 2 (a change can be timed
once per build).

Prints a report; ``--out`` also writes it to a file.  ``--tenant-sync-ref`` profiles
tenant_sync as of a git revision instead of the working tree.  For by-hand use, not CI.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import shlex
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench import model
from bench.code import pin_tenant_sync
from bench.state import Server, conninfo, create_schemas, server_url, tenant_names

if TYPE_CHECKING:
    from tenant_sync import TenantSync


class StatementStats:
    """Counts and client-side time of every statement an engine sends, by statement shape."""

    def __init__(self) -> None:
        self.count: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        # Listeners fire in the worker threads: the lock guards both dicts.
        self._lock = threading.Lock()

    def attach(self, engine: Engine) -> None:
        """Listen to ``engine``'s cursor executions."""
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        elapsed = time.perf_counter() - conn.info["bench_started"].pop()
        key = _shape(statement)
        with self._lock:
            self.count[key] += 1
            self.seconds[key] += elapsed

    def report(self, tenants: int, wall_s: float, workers: int) -> str:
        """Statements per tenant and where their time goes, biggest first."""
        total_n = sum(self.count.values())
        total_s = sum(self.seconds.values())
        lines = [
            f"{total_n} statements = {total_n / tenants:.1f} round trips per tenant; "
            f"client-side statement time {total_s:.1f}s summed over all threads "
            f"({workers} workers and the calling thread); "
            f"wall {wall_s:.1f}s, {wall_s / tenants * 1000:.1f} ms per tenant",
            "",
            "| calls | per tenant | ms per call | share of statement time | statement |",
            "|---:|---:|---:|---:|---|",
        ]
        for key in sorted(self.seconds, key=self.seconds.__getitem__, reverse=True):
            lines.append(
                f"| {self.count[key]} | {self.count[key] / tenants:.3g} "
                f"| {self.seconds[key] / self.count[key] * 1000:.2f} "
                f"| {self.seconds[key] / total_s:.1%} | `{key}` |"
            )
        return "\n".join(lines)


def _shape(statement: str) -> str:
    """A statement with its literals and parameter names blurred, cut to a readable length."""
    text = " ".join(statement.split())
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"%\(\w+\)s", "?", text)
    text = re.sub(r"\btenant_\d+\b", "<tenant>", text)
    return text[:150]


def _recorded_trips(url: sa.URL, sync: type[TenantSync]) -> list[list[str]]:
    """Each tenant's round-trip statements, as ``sync_all()`` to v2 would send them."""
    from tenant_sync.fastpath import round_trip

    trips: list[list[str]] = []
    sender = round_trip.run_transaction
    round_trip.run_transaction = lambda engine, statements: trips.append(list(statements))
    try:
        with sync(url, model.model_v2()) as ts:
            ts.sync_all()
    finally:
        round_trip.run_transaction = sender
    return trips


def _replay(url: sa.URL, trips: list[list[str]]) -> str:
    """Each statement of ``trips`` timed on its own, serially, each trip rolled back."""
    seconds: dict[str, float] = defaultdict(float)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        recheck = next(s for s in trips[0] if s.startswith("DO "))
        conn.execute(recheck)  # makes the session's stamp function, outside the rollbacks
        for trip in trips:
            conn.execute("BEGIN")
            for statement in trip:
                started = time.perf_counter()
                conn.execute(statement)
                seconds[_shape(statement)] += time.perf_counter() - started
            conn.execute("ROLLBACK")
    total = sum(seconds.values())
    lines = [
        f"{len(trips)} round trips replayed serially: {total / len(trips) * 1000:.2f} ms of "
        "statement time per tenant (client-side, so each includes a network round trip)",
        "",
        "| ms per tenant | share | statement |",
        "|---:|---:|---|",
    ]
    for key in sorted(seconds, key=seconds.__getitem__, reverse=True):
        share = seconds[key] / total
        lines.append(f"| {seconds[key] / len(trips) * 1000:.3f} | {share:.1%} | `{key[:100]}` |")
    return "\n".join(lines)


def _build(
    server: Server, db: str, tenants: list[str], sync: type[TenantSync], version: str
) -> None:
    server.drop(db)
    server.create(db)
    url = server.database(db)
    create_schemas(url, tenants)
    started = time.monotonic()
    metadata = model.model_v1() if version == "v1" else model.model_v2()
    with sync(url, metadata) as ts:
        report = ts.sync_all()
    if not report.ok:
        raise SystemExit(f"building the tenants failed: {report.failed()[0].error}")
    print(
        f"built {len(tenants)} tenants at {version} in {time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )


def _pstats(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _profile_sync_all(
    url: sa.URL, top: int, sync: type[TenantSync], stats: StatementStats | None = None
) -> tuple[str, float, int]:
    """cProfile of ``sync_all()`` to v2: the calling thread only (discovery, gathering).

    Returns the report text, the wall time and the number of workers.
    """
    with sync(url, model.model_v2()) as ts:
        if stats is not None:
            stats.attach(ts.engine)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        report = ts.sync_all()
        profiler.disable()
        wall = time.perf_counter() - started
    header = (
        f"cProfile of sync_all(), calling thread only (worker threads are not seen): "
        f"{wall:.1f}s for {len(report.results)} tenants, {report.counts}\n"
    )
    if report.counts["failed"]:
        raise SystemExit(f"the profiled run failed: {report.failed()[0].error}")
    return header + _pstats(profiler, top), wall, ts.options.workers


def _profile_per_tenant(url: sa.URL, tenants: list[str], top: int, sync: type[TenantSync]) -> str:
    """cProfile of ``sync_tenant()`` one tenant after another: the per-tenant path."""
    with sync(url, model.model_v2()) as ts:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for tenant in tenants:
            result = ts.sync_tenant(tenant, create=False)
            assert result.status == "unchanged", result
        profiler.disable()
        wall = time.perf_counter() - started
    header = (
        f"cProfile of sync_tenant() on {len(tenants)} tenants serially in one thread: "
        f"{wall:.1f}s, {wall / len(tenants) * 1000:.1f} ms per tenant (with profiler overhead)\n"
    )
    return header + _pstats(profiler, top)


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the tenants, then count and profile a run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--scenario", choices=("noop", "change"), default="noop")
    parser.add_argument("--profile-sample", type=int, default=200, metavar="K")
    parser.add_argument("--warmup", type=int, default=1, help="untimed no-op runs first")
    parser.add_argument(
        "--replay", type=int, default=300, metavar="K", help="round trips replayed (change)"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--database-url", help="server (and database) to use")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--tenant-sync-ref", metavar="REV", help="profile this git revision")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.reuse and args.scenario == "change":
        parser.error("--reuse works for noop only: a change run leaves the tenants at v2")
    pinned = None
    code = "working tree"
    if args.tenant_sync_ref:
        pinned, commit = pin_tenant_sync(args.tenant_sync_ref)
        sys.path.insert(0, str(pinned))
        code = f"git revision {args.tenant_sync_ref} ({commit})"
    try:
        _main(args, code)
    finally:
        if pinned is not None:
            shutil.rmtree(pinned, ignore_errors=True)


def _noop(url: sa.URL, tenants: list[str], args: argparse.Namespace, sync: type[TenantSync]) -> str:
    with sync(url, model.model_v2()) as ts:
        for _ in range(args.warmup):
            ts.sync_all()  # settles whatever a first run after the build still writes
    stats = StatementStats()
    with sync(url, model.model_v2()) as ts:
        stats.attach(ts.engine)
        started = time.perf_counter()
        report = ts.sync_all()
        wall = time.perf_counter() - started
        workers = ts.options.workers
    assert report.counts["unchanged"] == len(tenants), report.counts
    text = "## Statements of a no-op sync_all()\n\n" + stats.report(len(tenants), wall, workers)
    text += "\n\n## Python profile of sync_all()\n\n```\n"
    text += _profile_sync_all(url, args.top, sync)[0] + "```\n"
    sample = tenants[: args.profile_sample]
    text += "\n## Python profile of the per-tenant path (sync_tenant)\n\n```\n"
    text += _profile_per_tenant(url, sample, args.top, sync) + "```\n"
    return text


def _main(args: argparse.Namespace, code: str) -> None:
    from tenant_sync import TenantSync

    print(
        f"tenant_sync: {code}, imported from {sys.modules['tenant_sync'].__file__}", file=sys.stderr
    )

    url = server_url(args.database_url)
    server = Server(url)
    db = url.database if args.database_url else f"bench_profile_n{args.tenants}"
    assert db
    tenants = tenant_names(args.tenants)
    if not args.reuse:
        _build(server, db, tenants, TenantSync, "v2" if args.scenario == "noop" else "v1")
    url = server.database(db)
    command = shlex.join(["python", "bench/profile_sync.py", *sys.argv[1:]])
    text = f"# Profile of a {args.scenario} run, {len(tenants)} tenants\n\n"
    text += f"Command: `{command}`\n\ntenant_sync measured: {code}\n\n"
    try:
        if args.scenario == "change":
            trips = _recorded_trips(url, TenantSync)[: args.replay]
            text += "## Inside a round trip, replayed\n\n" + _replay(url, trips) + "\n\n"
            stats = StatementStats()
            profile, wall, workers = _profile_sync_all(url, args.top, TenantSync, stats)
            text += "## Statements of sync_all() from v1 to v2\n\n"
            text += (
                "Not counted: statements sent on the DBAPI cursor directly, such as "
                "tenant_sync's one-round-trip DDL batch per tenant (1abe61c), which "
                "SQLAlchemy's events don't see.\n\n"
            )
            text += stats.report(len(tenants), wall, workers)
            text += "\n\n## Python profile of the same sync_all()\n\n```\n" + profile + "```\n"
        else:
            text += _noop(url, tenants, args, TenantSync)
    finally:
        if not args.keep:
            server.drop(db)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
