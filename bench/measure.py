"""One timed measurement, run in its own process so its peak memory is its own.

:func:`measure_in_child` forks a child per measurement; by hand,
``python -m bench.measure`` reads a JSON spec on stdin and prints one JSON line::

    {"variant": "plain" | "tenant_sync" | "floor",
     "url": "postgresql+psycopg://...", "scenario": "build" | "change" | "noop" | "drift",
     "tenants": ["tenant_00000", ...], "workers": 4}

The three variants do the same work three ways:

* ``plain``: the loop a user writes: serial; per tenant ``engine.begin()``,
  ``SET LOCAL search_path``, ``MigrationContext.configure``, ``produce_migrations`` and
  ``Operations.invoke`` on each operation.  Same comparison options as tenant_sync.
* ``tenant_sync``: ``TenantSync(url, metadata).sync_all()``, all defaults.  It lists
  the tenants itself (every schema but ``public``), so ``tenants`` only sets the count.
* ``floor``: the raw DDL of the change as plain SQL over psycopg, one round trip and
  one transaction per tenant (``BEGIN; SET LOCAL search_path ...; DDL; COMMIT``), on
  ``workers`` connections in as many threads (1 = serial).
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from psycopg import sql

from bench import model
from bench.state import conninfo

__all__ = [
    "floor",
    "main",
    "measure",
    "measure_in_child",
    "plain_loop",
    "plain_migrate",
    "statements_for",
    "target_model",
    "tenant_sync_run",
]

#: Tables a user's plain loop leaves out of the comparison: Alembic's and tenant_sync's
#: bookkeeping (the benchmark's tenants carry the latter, as after real tenant_sync runs).
PLAIN_IGNORED_TABLES = frozenset({"alembic_version", "tenant_sync_version", "tenant_sync_history"})


def target_model(scenario: str) -> sa.MetaData:
    """The model a scenario syncs to: v1 for the first build, v2 for the others."""
    return model.model_v1() if scenario == "build" else model.model_v2()


def statements_for(scenario: str, tenants: Sequence[str]) -> dict[str, list[str]]:
    """The raw DDL each tenant needs in ``scenario``: the floor's work."""
    if scenario == "build":
        ddl = model.build_ddl(model.model_v1())
        return {tenant: ddl for tenant in tenants}
    if scenario == "change":
        ddl = model.change_ddl()
        return {tenant: ddl for tenant in tenants}
    drifted = set(model.DRIFT.drifted(list(tenants))) if scenario == "drift" else set()
    return {tenant: list(model.DRIFT.repair) if tenant in drifted else [] for tenant in tenants}


def plain_loop(url: str, metadata: sa.MetaData, tenants: Iterable[str]) -> dict[str, Any]:
    """What a user writes without tenant_sync: one tenant after another."""
    engine = sa.create_engine(url)
    operations_run = 0
    for tenant in tenants:
        with engine.begin() as conn:
            conn.execute(sa.text(f'SET LOCAL search_path TO "{tenant}"'))
            operations_run += plain_migrate(conn, metadata)
    engine.dispose()
    return {"operations": operations_run}


def plain_migrate(conn: sa.Connection, metadata: sa.MetaData) -> int:
    """The plain loop's work in the tenant ``conn`` points at: autogenerate, then apply.

    Returns the number of operations run.
    """

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        return not (type_ == "table" and name in PLAIN_IGNORED_TABLES)

    context = MigrationContext.configure(
        conn,
        opts={
            "target_metadata": metadata,
            "include_name": include_name,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    script = produce_migrations(context, metadata)
    assert script.upgrade_ops is not None
    operations = Operations(context)
    count = 0
    for op in _flatten(script.upgrade_ops.ops):
        operations.invoke(op)
        count += 1
    return count


def _flatten(operations: Iterable[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from _flatten(op.ops)
        else:
            yield op


def tenant_sync_run(url: str, metadata: sa.MetaData) -> dict[str, Any]:
    """tenant_sync with its defaults."""
    import tenant_sync
    from tenant_sync import TenantSync

    with TenantSync(url, metadata) as ts:
        report = ts.sync_all()
    failed = report.failed()
    return {
        "operations": sum(len(result.operations) for result in report.results),
        "statuses": report.counts,
        "tenants_seen": len(report.results),
        "first_error": failed[0].error if failed else None,
        "workers": ts.options.workers,
        "tenant_sync_file": tenant_sync.__file__,
    }


def floor(url: str, work: dict[str, list[str]], workers: int) -> dict[str, Any]:
    """The raw DDL, one round trip and one transaction per tenant, on ``workers`` threads."""
    jobs: queue.SimpleQueue[str] = queue.SimpleQueue()
    for tenant in work:
        jobs.put(tenant)
    info = conninfo(sa.make_url(url))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(info, autocommit=True) as conn:
                while True:
                    try:
                        tenant = jobs.get_nowait()
                    except queue.Empty:
                        return
                    body = "".join(f"{statement};\n" for statement in work[tenant])
                    conn.execute(
                        sql.SQL("BEGIN; SET LOCAL search_path TO {};\n{}COMMIT").format(
                            sql.Identifier(tenant),
                            sql.SQL(body),
                        )
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {"operations": sum(len(statements) for statements in work.values())}


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; return its time, memory and what it did."""
    variant, url, scenario = spec["variant"], spec["url"], spec["scenario"]
    tenants: list[str] = spec["tenants"]
    metadata = target_model(scenario)
    work = statements_for(scenario, tenants) if variant == "floor" else {}
    if variant == "tenant_sync":
        import tenant_sync  # noqa: F401  (imported before the clock starts, like the others)
    rss_before = _rss_mb()
    started = time.perf_counter()
    if variant == "plain":
        detail = plain_loop(url, metadata, tenants)
    elif variant == "tenant_sync":
        detail = tenant_sync_run(url, metadata)
    elif variant == "floor":
        detail = floor(url, work, int(spec.get("workers", 1)))
    else:
        raise ValueError(f"unknown variant {variant!r}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "seconds": seconds,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
        **detail,
    }


def measure_in_child(
    spec: dict[str, Any],
    code_dir: Path | None = None,
    measure: Callable[[dict[str, Any]], dict[str, Any]] = measure,
) -> dict[str, Any]:
    """Run ``measure`` (by default :func:`measure`) in a forked child; return its result or error.

    A fork of this process, which has imported SQLAlchemy, Alembic and psycopg but
    never tenant_sync nor opened a connection, starts in milliseconds where a fresh
    interpreter takes about a second, and still has a peak RSS of its own.
    ``code_dir``, when given, goes first on the child's ``sys.path``: the tenant_sync
    there is the one measured.
    """
    if "tenant_sync" in sys.modules:
        raise RuntimeError("tenant_sync is imported already; children would share it")
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(spec, code_dir, sender, measure))
    process.start()
    sender.close()
    try:
        result: dict[str, Any] = receiver.recv()
    except EOFError:
        result = {"error": f"the measuring process died (exit code {process.exitcode})"}
    process.join()
    receiver.close()
    return result


def _child_main(
    spec: dict[str, Any],
    code_dir: Path | None,
    sender: Connection,
    measure: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    try:
        if code_dir is not None:
            sys.path.insert(0, str(code_dir))
        result = measure(spec)
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]}
    sender.send(result)
    sender.close()


def main() -> None:
    """Read a spec on stdin, measure, print the result as one JSON line."""
    spec = json.loads(sys.stdin.read())
    print(json.dumps(measure(spec)))


if __name__ == "__main__":
    main()
