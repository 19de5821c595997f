"""A fleet: several databases synced in one run, with one merged report.

Teams that outgrow one server spread their tenant schemas over several databases.
A :class:`Fleet` names each database (an Engine or URL) and syncs them at once, each as
:class:`~tenant_sync.TenantSync` syncs one: its own catalog pass, shapes and round trips,
on its own pool of ``workers`` connections.  Tenants are discovered in each database by
the same ``tenants`` and ``exclude`` rules, or come from a ``registry`` callable that
returns ``(database, schema)`` pairs (the usual control table ``tenants(schema, shard)``).

A database that cannot be reached, at the start or in the middle of the run, does not
stop the others: it is named in the report with its error, once; its tenants not yet
run are reported ``skipped`` with that error (those it failed, ``failed``), and the
report is not ``ok``.  ``shard=(I, N)`` takes a stable share of the fleet's tenants (see
:mod:`tenant_sync.shards`), so that N machines can split one run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL, Engine

from ..coordinator import TenantSync
from ..errors import ConfigurationError, DatabaseConnectionError, TenantSyncError
from ..fastpath.shared import SharedComparisons
from ..report import SyncReport, TenantResult
from ..run_header import RunInfo
from ..run_info import new_run_id
from ..runner import FleetShare, warn_differences
from ..shards import Shard, check_shard
from .databases import DatabaseSync

__all__ = ["Fleet", "Registry"]

log = logging.getLogger("tenant_sync.fleet")

#: A callable that returns every tenant as a ``(database, schema)`` pair.
Registry = Callable[[], Iterable[tuple[str, str]]]


class Fleet:
    """Keep the tenant schemas of several databases in step with one model, in one run.

    :param databases: each database by name: an Engine (used as is) or a URL.  The names
        are how results, reports and ``--url NAME=URL`` name them.
    :param metadata: the model, as for :class:`~tenant_sync.TenantSync`.
    :param tenants: which schemas are tenants in each database, as for TenantSync.
    :param exclude: schemas left out in each database, as for TenantSync.
    :param registry: instead of discovery, a callable returning ``(database, schema)``
        pairs: each database syncs the schemas named for it (``tenants`` is then ignored).
    :param workers: tenants synced at once in each database (its pool's size).
    :param max_workers: tenants synced at once in the whole fleet; by default
        ``workers`` times the number of databases.  Every database runs at once (its
        catalog pass and comparisons too); below that default, a tenant waits for one of
        the fleet's ``max_workers`` slots before it connects.
    :param shard: ``(I, N)``: only share I of N of the fleet's tenants (see
        :mod:`tenant_sync.shards`).
    :param on_result: called in the calling thread with each TenantResult (its
        ``database`` set) as it finishes.
    :param options: every other keyword is a :class:`~tenant_sync.TenantSync` option
        (``allow``, ``accept``, ``strict``, ``lock_timeout``, ``online``, ...), the same for
        every database.

    Configuration problems raise :class:`~tenant_sync.errors.TenantSyncError`; a database
    that is down, like a tenant that fails, is reported::

        with Fleet({"eu": EU_URL, "us": US_URL}, Base.metadata, tenants="tenant_%") as fleet:
            report = fleet.sync_all()
        assert report.ok, report.failed()
    """

    def __init__(
        self,
        databases: Mapping[str, Engine | URL | str],
        metadata: Any,
        tenants: Any = None,
        *,
        exclude: Any = None,
        registry: Registry | None = None,
        workers: int = 4,
        max_workers: int | None = None,
        shard: Shard | None = None,
        on_result: Callable[[TenantResult], object] | None = None,
        **options: Any,
    ) -> None:
        if not databases:
            raise ConfigurationError("a fleet needs at least one database")
        for name in databases:
            _check_name(name)
        if max_workers is not None and max_workers < 1:
            raise ConfigurationError(f"max_workers must be at least 1, not {max_workers}")
        self.shard = check_shard(shard) if shard is not None else None
        self.registry = registry
        self.on_result = on_result
        self.max_workers = max_workers or workers * len(databases)
        self.workers = min(workers, self.max_workers)  # each database's pool
        self._syncs: dict[str, TenantSync] = {}
        try:
            for name, engine_or_url in databases.items():
                self._syncs[name] = TenantSync(
                    engine_or_url,
                    metadata,
                    tenants,
                    exclude=exclude,
                    workers=self.workers,
                    name=name,
                    shard=self.shard,
                    **options,
                )
                self._syncs[name].warns_at_end = False  # the fleet warns once for all
        except BaseException:
            self.close()
            raise
        self._cancel = threading.Event()
        self.last_report: SyncReport | None = None

    def __repr__(self) -> str:
        return f"<Fleet {', '.join(self._syncs)} max_workers={self.max_workers}>"

    @property
    def databases(self) -> dict[str, TenantSync]:
        """Each database's :class:`~tenant_sync.TenantSync`, by name (read only)."""
        return dict(self._syncs)

    def list_tenants(self) -> list[tuple[str, str]]:
        """Every tenant as ``(database, schema)``, in the share ``shard`` takes.

        A database that cannot be reached is left out, named in a warning (a sync
        reports it); with a registry, its tenants are listed all the same.
        """
        chosen = self._registered()
        listed: list[tuple[str, str]] = []
        for name, ts in self._syncs.items():
            if chosen is not None:
                listed += [(name, schema) for schema in chosen[name] if ts.in_shard(schema)]
                continue
            try:
                listed += [(name, schema) for schema in ts.list_tenants()]
            except DatabaseConnectionError as exc:
                log.info("database %s unreachable, its tenants not listed: %s", name, exc)
        return listed

    def sync_all(self, dry_run: bool = False) -> SyncReport:
        """Sync every database's tenants and return one report of them all.

        Databases run at once, with at most ``max_workers`` tenants in flight over all of
        them; in each, tenants run as
        :meth:`TenantSync.sync_all <tenant_sync.TenantSync.sync_all>` runs them.  The
        report lists every tenant with its ``database``, and in ``databases`` each
        database with its counts and, if it could not be reached, its error.
        :meth:`cancel` (or Ctrl-C) stops every database from starting new tenants.
        """
        self._cancel.clear()
        started = time.monotonic()
        chosen = self._registered()
        header = self._run_info(dry_run)
        share = self._share()  # for this run only: shapes are compared as they are now
        runs = [
            DatabaseSync(
                name,
                ts,
                None if chosen is None else chosen[name],
                self._cancel,
                header.run_id,
                share,
            )
            for name, ts in self._syncs.items()
        ]
        # Each result as it comes, and each database's future once its run is over.
        finished: queue.SimpleQueue[TenantResult | Future[None]] = queue.SimpleQueue()
        report = SyncReport(dry_run=dry_run)
        try:
            with ThreadPoolExecutor(len(runs), thread_name_prefix="fleet") as pool:
                futures = [pool.submit(run.run, dry_run, finished.put) for run in runs]
                for future in futures:
                    future.add_done_callback(finished.put)
                self._gather(futures, finished)
        except KeyboardInterrupt:
            log.warning("interrupted: every database finishes its tenants in flight")
            self.cancel()
            raise
        finally:
            self._report(report, runs, header, started)
        return report

    def sync_tenant(
        self, database: str, schema: str, create: bool = True, dry_run: bool = False
    ) -> TenantResult:
        """Sync (at signup: create and build) one tenant of ``database``, as
        :meth:`TenantSync.sync_tenant <tenant_sync.TenantSync.sync_tenant>` does.

        :raises ConfigurationError: ``database`` is not one of the fleet's.
        """
        return self._sync(database).sync_tenant(schema, create=create, dry_run=dry_run)

    def cancel(self) -> None:
        """Stop a running :meth:`sync_all` from another thread: no new tenant starts."""
        self._cancel.set()
        for ts in self._syncs.values():
            ts.cancel()

    def close(self) -> None:
        """Dispose of the engines the fleet created (from URLs)."""
        for ts in self._syncs.values():
            ts.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _sync(self, database: str) -> TenantSync:
        try:
            return self._syncs[database]
        except KeyError:
            known = ", ".join(self._syncs)
            raise ConfigurationError(
                f"no database {database!r} in this fleet (it has: {known})"
            ) from None

    def _share(self) -> FleetShare:
        """What the databases share in one run: comparisons, and ``max_workers`` slots
        when the databases' workers together would exceed it."""
        capped = self.max_workers < self.workers * len(self._syncs)
        slots = threading.BoundedSemaphore(self.max_workers) if capped else None
        return FleetShare(SharedComparisons(), slots)

    def _registered(self) -> dict[str, list[str]] | None:
        """The registry's tenants by database, in its order; None without a registry."""
        if self.registry is None:
            return None
        chosen: dict[str, list[str]] = {name: [] for name in self._syncs}
        try:
            pairs = list(self.registry())
        except Exception as exc:
            raise ConfigurationError(f"the fleet's registry raised: {exc}") from exc
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ConfigurationError(
                    f"the registry must return (database, schema) pairs, not {pair!r}"
                )
            database, schema = pair
            self._sync(database)
            chosen[database].append(schema)
        return chosen

    def _gather(
        self,
        futures: list[Future[None]],
        finished: queue.SimpleQueue[TenantResult | Future[None]],
    ) -> None:
        """Pass each result to ``on_result`` in this thread until every database is done.

        A database's future comes after all its results (it is done once its run has
        delivered them), so the last one ends the wait at once.
        """
        running = len(futures)
        while running:
            try:
                # A bounded wait, so that Ctrl-C reaches this thread promptly.
                item = finished.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, Future):
                running -= 1
            elif self.on_result is not None:
                self.on_result(item)
        for future in futures:
            future.result()  # a bug in a database's run is raised, not hidden

    def _report(
        self, report: SyncReport, runs: list[DatabaseSync], header: RunInfo, started: float
    ) -> None:
        report.results = [result for run in runs for result in run.results()]
        report.databases = [run.outcome() for run in runs]
        report.run = header
        report.duration_s = time.monotonic() - started
        report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        report.cancelled = self._cancel.is_set()
        self.last_report = report
        # Each database's error was logged when found; what differs, once for the fleet.
        warn_differences(report.results)
        log.info("%s", report.summary())

    def _run_info(self, dry_run: bool) -> RunInfo:
        """The fleet's header: the first database that answers tells the server's version."""
        first = None
        for ts in self._syncs.values():
            try:
                first = ts.run_info(dry_run)
                break
            except TenantSyncError:
                continue
        if first is None:  # none answers: the header without the server's version
            first = RunInfo(
                database="", model=next(iter(self._syncs.values())).model_name, run_id=new_run_id()
            )
        options = {**first.options, "databases": list(self._syncs), "max_workers": self.max_workers}
        if self.shard is not None:
            options["shard"] = f"{self.shard[0]}/{self.shard[1]}"
        names = ", ".join(self._syncs)
        return RunInfo(
            database=f"fleet of {len(self._syncs)} databases: {names}",
            model=first.model,
            model_fingerprint=first.model_fingerprint,
            run_id=first.run_id,
            versions=first.versions,
            options=options,
        )


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or "=" in name or "/" in name or name != name.strip():
        raise ConfigurationError(
            f"a fleet's database name must be a non-empty word without '=' or '/', not {name!r}"
        )
