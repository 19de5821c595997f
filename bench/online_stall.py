"""Write stalls during a sync of one big tenant table: the plain path against the online one.

::

    python bench/online_stall.py --rows 2000000 --variants plain online --repeat 3 \\
        --out bench/results/online-stall.md

One tenant, ``tenant_big``, at model v1 (``accounts``: 1,000 rows, ``events``: ``--rows``)
in a template database (``tenant_sync_bench_online``); each run syncs a fresh copy of it
to v2 (an index on ``events(account_id)``, a foreign key to ``accounts``, ``note NOT
NULL``) while a writer thread (own connection, autocommit, ``lock_timeout = 0``) INSERTs
and UPDATEs one row at a time, timing each statement.  ``plain`` is ``online="never"``,
``online`` is ``online="always"``.  Reported: the sync's time, the longest write, p99 and
p50 during the sync, p50 before it.  The target: no stall over 200 ms on the online path.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import random
import shlex
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import URL

from bench.state import DEFAULT_SERVER_URL, Server, conninfo
from tenant_sync import TenantSync, __version__

VARIANTS = {"plain": "never", "online": "always"}
TEMPLATE_DB, RUN_DB = "tenant_sync_bench_online", "tenant_sync_bench_online_run"
SCHEMA, ACCOUNTS = "tenant_big", 1_000
INDEX, FK = "ix_events_account_id", "fk_events_account_id_accounts"
TARGET_MS = 200.0
_INSERT = "INSERT INTO events (account_id, kind, amount, note) VALUES (%s, 'write', %s, 'w')"
_UPDATE = "UPDATE events SET amount = amount + 1 WHERE id = %s"


class BenchError(Exception):
    """A set-up step failed, or the writer could not go on."""


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def model(version: int) -> sa.MetaData:
    """Model v1, or v2 = v1 + the index, the foreign key and ``note NOT NULL``."""
    metadata = sa.MetaData()  # the v2 objects are named explicitly, the keys by PostgreSQL
    sa.Table(
        "accounts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
    )
    account_id: list[Any] = [sa.ForeignKey("accounts.id", name=FK)] if version == 2 else []
    sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Integer, *account_id),
        sa.Column("kind", sa.Text),
        sa.Column("amount", sa.Integer),
        sa.Column("note", sa.Text, nullable=version == 1),
        *([sa.Index(INDEX, "account_id")] if version == 2 else []),
    )
    return metadata


def accepts_online() -> bool:
    """Whether this tenant_sync's TenantSync takes ``online=`` (the lock-safe path)."""
    return "online" in inspect.signature(TenantSync.__init__).parameters


def build_template(server: Server, rows: int) -> None:
    """The v1 tenant, built by tenant_sync, loaded with ``rows`` events, vacuumed."""
    server.drop(RUN_DB)
    server.drop(TEMPLATE_DB)
    server.create(TEMPLATE_DB)
    url = server.database(TEMPLATE_DB)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    with TenantSync(url, model(1), tenants=[SCHEMA], workers=1) as ts:
        result = ts.sync_all().results[0]
    if result.status != "migrated":
        raise BenchError(f"building v1 failed: {result.status} {result.error}")
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            "INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, %s) g",
            (ACCOUNTS,),
        )
        conn.execute(
            "INSERT INTO events (account_id, kind, amount, note) SELECT 1 + g %% %s,"
            " (ARRAY['view', 'click', 'buy'])[1 + g %% 3], g %% 10000, 'note ' || g"
            " FROM generate_series(1, %s) g",
            (ACCOUNTS, rows),
        )
        conn.execute("VACUUM ANALYZE")


class Writer(threading.Thread):
    """INSERT one events row, UPDATE one by id, in turn, each timed, until stopped."""

    def __init__(self, url: URL, rows: int, seed: int) -> None:
        super().__init__(name="writer", daemon=True)
        self.url, self.rows, self.rng = url, rows, random.Random(seed)
        self.writes: list[tuple[float, float]] = []  # (start, latency), perf_counter seconds
        self.inserts = 0
        self.error: str | None = None
        self._stop_event = threading.Event()
        self._changed = threading.Condition()

    def run(self) -> None:
        try:
            with psycopg.connect(conninfo(self.url), autocommit=True) as conn:
                conn.execute("SET lock_timeout = 0; SET statement_timeout = 0")
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
                self._loop(conn)
        except psycopg.Error as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._changed:
                self._stop_event.set()
                self._changed.notify_all()

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        insert = True
        while not self._stop_event.is_set():
            started = time.perf_counter()
            if insert:
                conn.execute(_INSERT, (self.rng.randint(1, ACCOUNTS), self.rng.randint(0, 9999)))
            else:
                conn.execute(_UPDATE, (self.rng.randint(1, self.rows),))
            latency = time.perf_counter() - started
            with self._changed:
                self.writes.append((started, latency))
                self.inserts += insert
                self._changed.notify_all()
            insert = not insert

    def wait_for(self, writes: int, timeout: float = 120.0) -> None:
        """Return once ``writes`` statements are done; raise if the writer stopped first."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self.writes) >= writes or self._stop_event.is_set(), timeout
            )
        if len(self.writes) < writes:
            raise BenchError(f"the writer stopped at {len(self.writes)} writes: {self.error}")

    def stop(self) -> None:
        """Stop after the statement in flight, and wait for the thread."""
        self._stop_event.set()
        self.join()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of ``values`` (nan if empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


#: What must hold in the tenant after the sync, each a query for one boolean.
_CHECKS = {
    f"index {INDEX} missing or not valid": "SELECT coalesce(bool_and(indisvalid), false)"
    f" FROM pg_index WHERE indexrelid = to_regclass('{INDEX}')",
    f"foreign key {FK} missing or not validated": "SELECT coalesce(bool_and(convalidated),"
    f" false) FROM pg_constraint WHERE conname = '{FK}' AND conrelid = 'events'::regclass",
    "events.note is nullable": "SELECT attnotnull FROM pg_attribute"
    " WHERE attrelid = 'events'::regclass AND attname = 'note'",
    "an invalid index on events": "SELECT NOT EXISTS (SELECT FROM pg_index"
    " WHERE indrelid = 'events'::regclass AND NOT indisvalid)",
    "a CHECK constraint left on events": "SELECT NOT EXISTS (SELECT FROM pg_constraint"
    " WHERE conrelid = 'events'::regclass AND contype = 'c')",
}


def verify(url: URL, rows: int, inserts: int) -> list[str]:
    """What is wrong in the tenant after the sync: the v2 objects, and the row count."""
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        problems = [text for text, query in _CHECKS.items() if not _scalar(conn, query)]
        count = _scalar(conn, "SELECT count(*) FROM events")
    if count != rows + inserts:
        problems.append(f"events has {count} rows, expected {rows} + {inserts} = {rows + inserts}")
    return problems


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()  # type: ignore[call-overload]
    return row[0] if row else None


@dataclass
class Run:
    """One measured sync and what the writer saw around it."""

    variant: str
    repeat: int
    status: str = "not run"
    sync_s: float = float("nan")
    stats: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _window_stats(writer: Writer, t0: float, t1: float) -> dict[str, float]:
    during = [lat * 1e3 for start, lat in writer.writes if start < t1 and start + lat > t0]
    before = [lat * 1e3 for start, lat in writer.writes if start + lat <= t0]
    return {
        "max_ms": max(during, default=float("nan")),
        "p99_ms": percentile(during, 99),
        "p50_ms": percentile(during, 50),
        "writes": len(during),
        "p50_before_ms": percentile(before, 50),
    }


def measure(server: Server, args: argparse.Namespace, variant: str, repeat: int) -> Run:
    """One run of ``variant`` on a fresh copy of the template."""
    run = Run(variant, repeat)
    options = {"online": VARIANTS[variant]} if accepts_online() else {}
    if variant != "plain" and not options:
        run.status, run.problems = "skipped", ["TenantSync has no online= parameter"]
        return run
    server.copy(TEMPLATE_DB, RUN_DB)
    server.checkpoint()
    url = server.database(RUN_DB)
    writer = Writer(url, args.rows, seed=repeat)
    with TenantSync(url, model(2), tenants=[SCHEMA], workers=1, **options) as ts:
        writer.start()
        try:
            writer.wait_for(args.warmup)
            t0 = time.perf_counter()
            report = ts.sync_all()
            t1 = time.perf_counter()
            writer.wait_for(len(writer.writes) + 20)  # it ran on past the sync's end
        finally:
            writer.stop()
    result = report.get(SCHEMA)
    run.sync_s, run.stats = t1 - t0, _window_stats(writer, t0, t1)
    run.status = result.status if result else "missing"
    if result is None or result.status != "migrated":
        run.problems.append(f"status {run.status}: {result.error if result else 'no result'}")
    if result is not None and result.differences:
        run.problems.append(f"still differs: {'; '.join(result.differences)}")
    run.problems += [f"writer: {writer.error}"] if writer.error else []
    run.problems += verify(url, args.rows, writer.inserts)
    server.drop(RUN_DB)
    return run


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cells(label: str, run: Run, stats: dict[str, float], sync_s: float) -> list[str]:
    def number(value: float, digits: int = 1) -> str:
        return "-" if math.isnan(value) else f"{value:,.{digits}f}"

    nan, check = float("nan"), "; ".join(run.problems) or "ok"
    times = [number(stats.get(key, nan)) for key in ("max_ms", "p99_ms", "p50_ms")]
    writes, before = number(stats.get("writes", nan), 0), number(stats.get("p50_before_ms", nan), 2)
    return [label, run.status, number(sync_s, 2), *times, writes, before, check]


def _medians(runs: list[Run]) -> list[str]:
    lines = []
    for variant in dict.fromkeys(run.variant for run in runs):
        done = [run for run in runs if run.variant == variant and run.stats]
        if len(done) > 1:
            stats = {key: statistics.median(r.stats[key] for r in done) for key in done[0].stats}
            sync_s = statistics.median(run.sync_s for run in done)
            lines.append(_row(_cells(f"{variant} median", Run(variant, 0, "-"), stats, sync_s)))
    return lines


def render(runs: list[Run], args: argparse.Namespace, server: Server) -> str:
    """The markdown page: how it was run, the table, the target."""
    header = "variant|status|sync s|longest stall ms|p99 ms|p50 ms|writes in sync|p50 before ms"
    lines = [
        f"# Write stalls during a sync, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`",
        "",
        f"{args.rows:,} events rows, {ACCOUNTS:,} accounts; PostgreSQL "
        f"{server.server_info()['server_version']}; {os.cpu_count()} CPUs; tenant_sync "
        f"{__version__}; TenantSync accepts online=: {'yes' if accepts_online() else 'no'}.",
        "",
        _row([*header.split("|"), "check"]),
        _row(["---"] * 2 + ["---:"] * 6 + ["---"]),
        *(_row(_cells(f"{run.variant} #{run.repeat}", run, run.stats, run.sync_s)) for run in runs),
        *_medians(runs),
    ]
    online = [run for run in runs if run.variant == "online" and run.stats]
    if online:
        longest = max(run.stats["max_ms"] for run in online)
        verdict = "met" if longest <= TARGET_MS else "NOT met"
        verdict = verdict if all(not run.problems for run in online) else "not judged (check)"
        worst = f"longest online stall {longest:,.1f} ms"
        lines += ["", f"Target (online: no stall over {TARGET_MS:.0f} ms): {verdict}; {worst}."]
    lines += [
        "",
        "Writes in sync: statements that overlap the `sync_all()` call; p50 before: those "
        f'that ended before it (after {args.warmup} warm-up writes). plain = online="never" '
        '(no online= where TenantSync has none), online = online="always". The writer is a '
        "thread of this process: its latencies include waits for the GIL.",
    ]
    return "\n".join(lines) + "\n"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_url = os.environ.get("TENANT_SYNC_TEST_DATABASE_URL", DEFAULT_SERVER_URL)
    parser.add_argument("--url", default=default_url, help="the server (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in events")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant")
    parser.add_argument("--warmup", type=int, default=300, help="writes before the sync")
    parser.add_argument("--out", type=Path, help="write the markdown table here too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the template, measure every variant ``--repeat`` times, print the table."""
    args = _parse(argv)
    server = Server(sa.make_url(args.url))
    runs: list[Run] = []
    try:
        started = time.monotonic()
        build_template(server, args.rows)
        _log(f"template with {args.rows:,} rows in {time.monotonic() - started:.1f}s")
        for repeat in range(1, args.repeat + 1):
            for variant in args.variants:
                runs.append(run := measure(server, args, variant, repeat))
                shown = {key: round(value, 1) for key, value in run.stats.items()}
                _log(f"{variant} #{repeat}: {run.status}, {run.sync_s:.2f}s, {shown}")
        page = render(runs, args, server)
    finally:
        server.drop(RUN_DB)
        server.drop(TEMPLATE_DB)
    print(page, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(page)
    return 0 if all(not r.problems for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
