"""The :class:`TenantSync` facade: list tenants, sync them in worker threads, gather a report.

This is the only module that starts threads.  Workers get an immutable
:class:`~tenant_sync.tenant.TenantJob` and return a TenantResult; results are
gathered, logged and passed to ``on_result`` in the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from .discovery import TenantsSpec, check_tenant_names, list_tenants
from .engine import connect, describe_url, make_engine
from .fingerprint import Shape, structure_fingerprints
from .locking import set_up_session
from .model import Model
from .options import SyncOptions
from .plan import ignored_tables
from .report import SyncReport, TenantResult
from .shapes import ShapePlan, group_by_shape, known_match, plan_shape, record_match
from .signup import SignupPlan
from .tenant import TenantJob, describe_error, sync_one

__all__ = ["TenantSync"]

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log during a long run.
PROGRESS_INTERVAL_S = 5.0

#: Fewest tenants per chunk of the catalog pass; bigger runs read up to ``workers`` chunks at once.
SHAPE_CHUNK_MIN = 500


class TenantSync:
    """Keep every tenant schema in step with a SQLAlchemy model.

    :param engine_or_url: a SQLAlchemy :class:`~sqlalchemy.engine.Engine` (used as is,
        never altered) or a URL (tenant_sync builds and owns an engine sized for ``workers``).
    :param metadata: the model: a :class:`~sqlalchemy.schema.MetaData` or declarative base.
        Tables with ``schema=None`` go into every tenant; tables with a schema are shared.
    :param tenants: which schemas are tenants: None (every non-system schema), a SQL LIKE
        pattern such as ``"tenant_%"``, a list of names, or a callable that gets a
        connection and returns names.
    :param workers: tenants synced at once, each on its own connection and transaction.
    :param allow_destructive: apply drops and type changes; by default they are withheld
        and listed in each result's ``withheld``.
    :param lock_timeout: seconds a tenant waits for a lock before it fails.
    :param on_result: called in the calling thread with each TenantResult as it finishes.

    Other keyword arguments (``statement_timeout``, ``retries``, ``retry_backoff``,
    ``version_table``) are those of :class:`~tenant_sync.options.SyncOptions`.

    Configuration and connection problems raise
    :class:`~tenant_sync.errors.TenantSyncError`; a tenant's failure never raises, it is
    reported::

        ts = TenantSync("postgresql+psycopg://app@db/app", Base.metadata, tenants="tenant_%")
        report = ts.sync_all()
        report.write("sync-report.json")
        assert report.ok, report.failed()
    """

    def __init__(
        self,
        engine_or_url: Engine | URL | str,
        metadata: Any,
        tenants: TenantsSpec = None,
        workers: int = 4,
        allow_destructive: bool = False,
        lock_timeout: float = 5.0,
        *,
        on_result: Callable[[TenantResult], object] | None = None,
        **options: Any,
    ) -> None:
        self.options = SyncOptions(
            workers=workers,
            allow_destructive=allow_destructive,
            lock_timeout=lock_timeout,
            **options,
        )
        self.model = Model(metadata)
        self.tenants = tenants
        self.on_result = on_result
        self.engine, self._owns_engine = make_engine(engine_or_url, workers)
        self._cancel = threading.Event()
        self._signup_plan = SignupPlan()
        self.last_report: SyncReport | None = None

    def __repr__(self) -> str:
        return f"<TenantSync {describe_url(self.engine.url)} workers={self.options.workers}>"

    def list_tenants(self) -> list[str]:
        """Return the tenant schema names, as selected by ``tenants``.

        :raises DatabaseConnectionError: the database cannot be reached.
        :raises DiscoveryError: a ``tenants`` callable raised.
        :raises ConfigurationError: a listed name is invalid or repeated.
        """
        with connect(self.engine) as conn, conn.begin():
            return list_tenants(conn, self.tenants, self.model.shared_schemas)

    def sync_all(self, dry_run: bool = False) -> SyncReport:
        """Sync every tenant, ``workers`` at a time, and return the report.

        Each tenant is synced in its own transaction: fully or not at all.  With
        ``dry_run=True`` nothing is changed; each result lists what would run.
        :meth:`cancel` (or Ctrl-C) stops starting new tenants: those in flight finish,
        the rest are reported ``skipped``.  Ctrl-C is re-raised once the run has
        wound down; the report is then in :attr:`last_report`.

        Unless ``verify=True``, tenants are grouped by the fingerprint of their
        structure, read for all of them in one pass over the catalog: each distinct
        shape is compared with the model once, tenants already matching it are
        reported ``unchanged`` at once, and the others apply their shape's SQL after
        re-checking under their own lock that they are as the pass saw them.
        """
        self._cancel.clear()
        started = time.monotonic()
        report = SyncReport(dry_run=dry_run)
        # Discovery errors are raised before the run starts: no report, no summary line.
        names = self._discover()
        # Filled as results come in, so that the report is complete even when Ctrl-C
        # is re-raised from the middle of the run.
        results: dict[str, TenantResult] = {}
        try:
            if not names:
                report.note = f"no tenant schema matched {self.tenants!r}"
                log.warning("no tenants to sync: %s", report.note)
            progress = _Progress(len(names), started)
            with ThreadPoolExecutor(
                self._usable_workers(), thread_name_prefix="tenant_sync"
            ) as pool:
                plans, shapes = self._plan(pool, names, record=not dry_run)
                jobs = []
                for name in names:
                    job = TenantJob(
                        name,
                        self.model,
                        self.options,
                        dry_run=dry_run,
                        cancel=self._cancel,
                        shape_plan=plans.get(name),
                        shape=shapes.get(name),
                    )
                    known = _result_from_plan(job)
                    if known is None:
                        jobs.append(job)
                    else:
                        results[name] = known
                        self._collect(known, progress)
                self._run_jobs(pool, jobs, results, progress)
        finally:
            report.results = [results.get(name) or _not_started(name) for name in names]
            self._finish(report, started)
        return report

    def drift(self) -> list[ShapePlan]:
        """List, without changing anything, how tenants deviate from the model.

        Returns one :class:`~tenant_sync.shapes.ShapePlan` per distinct structure that
        differs from the model: its tenants, the operations a sync would run and the
        destructive changes it would withhold.  Tenants that match are left out.
        """
        names = self._discover()
        with ThreadPoolExecutor(self._usable_workers(), thread_name_prefix="tenant_sync") as pool:
            plans, _ = self._plan(pool, names, record=False)
        distinct = {id(plan): plan for plan in plans.values()}
        return [plan for plan in distinct.values() if not plan.matches_model]

    def sync_tenant(self, schema: str, create: bool = True, dry_run: bool = False) -> TenantResult:
        """Sync one tenant in the calling thread, creating its schema first if ``create``.

        Made for signup: the schema is created and built in one transaction, under
        the tenant's advisory lock, so concurrent calls for the same tenant (and a
        concurrent :meth:`sync_all`) serialize: one builds it, the others find it
        unchanged.  A failure is returned as a ``failed`` result, not raised.

        The first signup compares its empty schema with the model; later ones build
        from that plan in one round trip, without reflecting the catalog (see
        :mod:`tenant_sync.signup`), unless ``verify=True``.
        """
        check_tenant_names([schema], self.model.shared_schemas)
        job = TenantJob(
            schema,
            self.model,
            self.options,
            create=create,
            dry_run=dry_run,
            signup_plan=None if self.options.verify else self._signup_plan,
        )
        result = sync_one(self.engine, job)
        _log_result(result)
        return result

    def cancel(self) -> None:
        """Stop a running :meth:`sync_all` from another thread: no new tenant starts."""
        self._cancel.set()

    def close(self) -> None:
        """Dispose of the engine if tenant_sync created it (from a URL)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> TenantSync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _discover(self) -> list[str]:
        """List the tenants (errors reach the caller: there is no run without them)."""
        with connect(self.engine) as conn, conn.begin():
            return list_tenants(conn, self.tenants, self.model.shared_schemas)

    def _plan(
        self, pool: ThreadPoolExecutor, names: list[str], record: bool
    ) -> tuple[dict[str, ShapePlan], dict[str, Shape]]:
        """Every tenant's shape and its shape's plan (none with ``verify``).

        The first tenant is compared with the model while the catalog pass runs (unless
        its shape is recorded as matching): most often all tenants share its shape, and
        the comparison, whose reflection scans the whole catalog, is then out of the
        way when the pass ends.
        """
        if self.options.verify or not names:
            return {}, {}
        first = pool.submit(plan_shape, self.engine, names[0], [], self.model, self.options)
        shapes = self._read_shapes(names)
        return self._plan_shapes(pool, names, shapes, record, first), shapes

    def _read_shapes(self, names: list[str]) -> dict[str, Shape]:
        """Every tenant's shape, read in a few chunks at once on the workers' connections.

        One query per chunk keeps the pass linear and lets the server use more than one
        core; one connection is left to the first tenant's comparison, which runs
        meanwhile.  A chunk whose query fails is left out: its tenants are then compared
        one by one, and each reports its own error.
        """
        if not names:
            return {}
        usable = max(1, self._usable_workers() - 1)
        count = max(1, min(usable, len(names) // SHAPE_CHUNK_MIN))
        chunks = [names[i::count] for i in range(count)]
        shapes: dict[str, Shape] = {}
        with ThreadPoolExecutor(count, thread_name_prefix="tenant_sync") as pool:
            for chunk_shapes in pool.map(self._read_chunk_shapes, chunks):
                shapes.update(chunk_shapes)
        return shapes

    def _read_chunk_shapes(self, names: list[str]) -> dict[str, Shape]:
        with connect(self.engine) as conn, conn.begin():
            set_up_session(conn, "pg_catalog", self.options.lock_timeout, None)
            try:
                return structure_fingerprints(
                    conn, names, ignored_tables(self.options), self.options.version_table
                )
            except DBAPIError as exc:
                log.warning(
                    "reading the structure of %d tenants failed, comparing them one by one: %s",
                    len(names),
                    describe_error(exc),
                )
                return {}

    def _plan_shapes(
        self,
        pool: ThreadPoolExecutor,
        names: list[str],
        shapes: dict[str, Shape],
        record: bool,
        first: Future[ShapePlan],
    ) -> dict[str, ShapePlan]:
        """Compare one representative per shape with the model; map each tenant to its plan.

        ``first`` is the plan of the first tenant's shape, begun before the pass.  A shape
        recorded as matching the model needs no comparison.  With ``record``, a shape
        found to match is recorded, so that the next run needs none either.  A shape
        whose comparison fails is left out: its tenants are then synced one by one, and
        each reports its own error.
        """
        groups = group_by_shape(shapes, names)
        recorded = {shape.version_comment for shape in shapes.values()}
        ready = _early_plan(first)
        plans: dict[str, ShapePlan] = {}
        futures: dict[Future[ShapePlan], list[str]] = {}
        found: list[tuple[ShapePlan, list[str]]] = []
        for tenants in groups.values():
            shape = shapes[tenants[0]]
            if known_match(shape, self.model, recorded):
                plans.update(dict.fromkeys(tenants, ShapePlan.matching(shape, tenants)))
            elif ready is not None and ready.shape.fingerprint == shape.fingerprint:
                found.append((replace(ready, tenants=tuple(tenants)), tenants))
            else:
                future = pool.submit(
                    plan_shape, self.engine, tenants[0], tenants, self.model, self.options, shape
                )
                futures[future] = tenants
        for future, tenants in futures.items():
            try:
                found.append((future.result(), tenants))
            except Exception as exc:
                log.warning(
                    "comparing %s (shape of %d tenants) failed, syncing them one by one: %s",
                    tenants[0],
                    len(tenants),
                    describe_error(exc),
                )
        for plan, tenants in found:
            plans.update(dict.fromkeys(tenants, plan))
            if record and plan.matches_model:
                record_match(self.engine, plan, self.model, self.options)
        if groups:
            log.info(
                "%d tenants in %d distinct shapes (%d compared with the model)",
                sum(map(len, groups.values())),
                len(groups),
                len(futures) + (ready is not None and ready.compared),
            )
        return plans

    def _run_jobs(
        self,
        pool: ThreadPoolExecutor,
        jobs: list[TenantJob],
        results: dict[str, TenantResult],
        progress: _Progress,
    ) -> None:
        # Each future reports itself on the queue when done, so gathering costs O(1) per
        # tenant (concurrent.futures.wait() rebuilds its sets on every call).
        finished: queue.SimpleQueue[Future[TenantResult]] = queue.SimpleQueue()
        pending: set[Future[TenantResult]] = set()
        for job in jobs:
            future = pool.submit(sync_one, self.engine, job)
            pending.add(future)
            future.add_done_callback(finished.put)
        try:
            self._gather(pending, finished, results, progress)
        except KeyboardInterrupt:
            log.warning("interrupted: finishing tenants in flight, skipping the rest")
            self._cancel.set()
            self._gather(pending, finished, results, progress)
            raise
        finally:
            # Only reached with pending futures if gathering itself failed (a second
            # Ctrl-C): tenants not started never will be; those running are awaited,
            # as the pool's shutdown would, so that their outcome is reported.
            if pending:
                self._cancel.set()
            for future in [future for future in pending if not future.cancel()]:
                result = future.result()
                results[result.schema] = result

    def _gather(
        self,
        pending: set[Future[TenantResult]],
        finished: queue.SimpleQueue[Future[TenantResult]],
        results: dict[str, TenantResult],
        progress: _Progress,
    ) -> None:
        while pending:
            try:
                # A bounded wait, so Ctrl-C reaches this thread promptly.
                future = finished.get(timeout=0.5)
            except queue.Empty:
                progress.maybe_log()
                continue
            if future not in pending:
                continue  # already gathered before an interruption
            # Recorded before anything that may be interrupted, so none is lost.
            result = future.result()
            results[result.schema] = result
            pending.discard(future)
            self._collect(result, progress)
            progress.maybe_log()

    def _collect(self, result: TenantResult, progress: _Progress) -> None:
        _log_result(result)
        progress.add(result)
        if self.on_result is not None:
            self.on_result(result)

    def _usable_workers(self) -> int:
        """Workers, capped by what a caller's engine pool can give at once."""
        pool = self.engine.pool
        if self._owns_engine or not isinstance(pool, QueuePool):
            return self.options.workers
        overflow = pool._max_overflow  # no public accessor; -1 means unlimited
        capacity = pool.size() + overflow if overflow >= 0 else self.options.workers
        if capacity < self.options.workers:
            log.warning(
                "engine pool holds %d connections; running %d workers instead of %d",
                capacity,
                capacity,
                self.options.workers,
            )
        return max(1, min(self.options.workers, capacity))

    def _finish(self, report: SyncReport, started: float) -> None:
        report.duration_s = time.monotonic() - started
        report.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        report.cancelled = self._cancel.is_set()
        self.last_report = report
        log.info("%s", report.summary())


class _Progress:
    """Counts results and logs a progress line every few seconds."""

    def __init__(self, total: int, started: float) -> None:
        self.total = total
        self.started = started
        self.done = 0
        self.failed = 0
        self._last_log = started

    def add(self, result: TenantResult) -> None:
        self.done += 1
        self.failed += result.status == "failed"

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last_log < PROGRESS_INTERVAL_S or self.done >= self.total:
            return
        self._last_log = now
        elapsed = now - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info(
            "progress: %d/%d tenants, %d failed, %.0fs elapsed, ETA %.0fs",
            self.done,
            self.total,
            self.failed,
            elapsed,
            eta,
        )


def _early_plan(first: Future[ShapePlan]) -> ShapePlan | None:
    """The first tenant's plan, begun before the pass, or None if it could not be made."""
    try:
        return first.result()
    except Exception as exc:
        # Its shape is then compared again after the pass, which reports any error.
        log.debug("comparing the first tenant early failed: %s", describe_error(exc))
        return None


def _not_started(schema: str) -> TenantResult:
    """The result of a tenant the run stopped before (Ctrl-C during the planning phase)."""
    return TenantResult(
        schema, "skipped", error="run interrupted before this tenant started", attempts=0
    )


def _result_from_plan(job: TenantJob) -> TenantResult | None:
    """The result of a tenant its shape's plan settles without touching it, else None."""
    plan = job.shape_plan
    if plan is None:
        return None
    if plan.up_to_date:
        return TenantResult(job.schema, "unchanged", withheld=list(plan.withheld), attempts=0)
    if job.dry_run:
        return TenantResult(
            job.schema,
            "planned",
            operations=list(plan.operations),
            sql=list(plan.sql),
            withheld=list(plan.withheld),
            attempts=0,
        )
    return None


def _log_result(result: TenantResult) -> None:
    for change in result.withheld:
        log.warning("tenant %s: withheld destructive change: %s", result.schema, change)
    if result.status == "failed":
        log.error("tenant %s: failed in %.3fs: %s", result.schema, result.duration_s, result.error)
        return
    log.info(
        "tenant %s: %s in %.3fs (%d operations, %d withheld)",
        result.schema,
        result.status,
        result.duration_s,
        len(result.operations),
        len(result.withheld),
    )
