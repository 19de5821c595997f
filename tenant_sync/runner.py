"""Running tenant jobs on the workers and gathering their results in the calling thread.

A :class:`JobRunner` submits each batch of :class:`~tenant_sync.tenant.TenantJob` as it
comes (the catalog pass yields them chunk by chunk), and collects every result in the
thread that called it: logged, counted for the progress line, and passed to
``on_result``.  Ctrl-C stops new tenants from starting; those in flight finish and are
reported.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine

from .fastpath.shared import SharedComparisons
from .output.progress import ProgressLog
from .report import TenantResult
from .tenant import TenantJob, sync_one

__all__ = [
    "NOT_STARTED",
    "FleetShare",
    "JobRunner",
    "log_result",
    "not_started",
    "warn_differences",
]

#: Why a tenant the run stopped before (Ctrl-C, cancel()) is skipped.
NOT_STARTED = "run interrupted before this tenant started"

# The run's own logger: what a run logs stays under one name, whichever module writes it.
log = logging.getLogger("tenant_sync.coordinator")


@dataclass(frozen=True)
class FleetShare:
    """What one database's run shares with the other databases of a fleet's run."""

    #: Each shape compared with the model once per server (see :mod:`.fastpath.shared`).
    comparisons: SharedComparisons | None = None
    #: One slot per tenant in flight over the whole fleet (its ``max_workers``); a job
    #: holds one from before its first connection until its result is in.
    slots: threading.Semaphore | None = None


class JobRunner:
    """Runs jobs on ``pool`` and gathers their results into ``results``; with ``slots``,
    each job runs holding one of them (a fleet's cap on the tenants in flight)."""

    def __init__(
        self,
        engine: Engine,
        pool: ThreadPoolExecutor,
        cancel: threading.Event,
        results: dict[str, TenantResult],
        progress: ProgressLog,
        on_result: Callable[[TenantResult], object] | None,
        database: str | None = None,
        slots: threading.Semaphore | None = None,
    ) -> None:
        self.engine, self.pool, self.cancel, self.slots = engine, pool, cancel, slots
        self.database = database  # what each result names as its database
        self.results, self.progress, self.on_result = results, progress, on_result
        # Each future reports itself on the queue when done, so gathering costs O(1) per
        # tenant (concurrent.futures.wait() rebuilds its sets on every call).
        self._finished: queue.SimpleQueue[Future[TenantResult]] = queue.SimpleQueue()
        self._pending: set[Future[TenantResult]] = set()

    def run(self, batches: Iterable[list[TenantJob]]) -> None:
        """Run each batch's jobs as the batch comes, gathering results meanwhile."""
        try:
            for jobs in batches:
                for job in jobs:
                    future = self.pool.submit(_sync_in_slot, self.engine, job, self.slots)
                    self._pending.add(future)
                    future.add_done_callback(self._finished.put)
                self._gather(wait=False)
            self._gather()
        except KeyboardInterrupt:
            log.warning("interrupted: finishing tenants in flight, skipping the rest")
            self.cancel.set()
            self._gather()
            raise
        finally:
            # Only reached with pending futures if gathering itself failed (a second
            # Ctrl-C): tenants not started never will be; those running are awaited,
            # as the pool's shutdown would, so that their outcome is reported.
            if self._pending:
                self.cancel.set()
            for future in [future for future in self._pending if not future.cancel()]:
                result = self._named(future.result())
                self.results[result.schema] = result

    def collect(self, result: TenantResult) -> None:
        """Record one tenant's result: logged, counted, passed to ``on_result``."""
        result = self._named(result)
        self.results[result.schema] = result
        # What still differs is warned about once per distinct difference, at the end.
        log_result(result, differences_level=logging.DEBUG)
        self.progress.add(result)
        if self.on_result is not None:
            self.on_result(result)

    def _gather(self, wait: bool = True) -> None:
        """Collect the results of pending jobs: all, or with ``wait=False`` those done."""
        while self._pending:
            try:
                # A bounded wait, so Ctrl-C reaches this thread promptly.
                future = self._finished.get(timeout=0.5) if wait else self._finished.get_nowait()
            except queue.Empty:
                self.progress.maybe_log()
                if not wait:
                    return
                # A Ctrl-C between taking a future off the queue and discarding it, or
                # between submitting one and adding its callback, leaves a future done
                # that the queue will never bring again: found here instead of awaited.
                for future in [future for future in self._pending if future.done()]:
                    self._take(future)
                continue
            if future in self._pending:  # else gathered before an interruption
                self._take(future)
            self.progress.maybe_log()

    def _take(self, future: Future[TenantResult]) -> None:
        # Recorded before anything that may be interrupted, so none is lost.
        result = self._named(future.result())
        self.results[result.schema] = result
        self._pending.discard(future)
        self.collect(result)

    def _named(self, result: TenantResult) -> TenantResult:
        if self.database is None or result.database == self.database:
            return result
        return replace(result, database=self.database)


def _sync_in_slot(
    engine: Engine, job: TenantJob, slots: threading.Semaphore | None
) -> TenantResult:
    if slots is None:
        return sync_one(engine, job)
    with slots:
        return sync_one(engine, job)


def warn_differences(results: list[TenantResult], named: int = 3) -> None:
    """One warning per distinct remaining difference, with its tenants counted."""
    tenants: dict[str, list[str]] = {}
    for result in results:
        for difference in result.differences:
            tenants.setdefault(difference, []).append(result.name)
    for difference, schemas in sorted(tenants.items(), key=lambda item: (-len(item[1]), item[0])):
        shown = ", ".join(schemas[:named]) + (", ..." if len(schemas) > named else "")
        log.warning(
            "still differs from the model: %s, in %d of %d tenants (%s)",
            difference,
            len(schemas),
            len(results),
            shown,
        )


def not_started(schema: str, reason: str | None = None) -> TenantResult:
    """The result of a tenant the run stopped before: a wave not started (``reason``),
    or Ctrl-C during the planning phase."""
    error = reason or NOT_STARTED
    return TenantResult(schema, "skipped", error=error, attempts=0)


def log_result(result: TenantResult, differences_level: int = logging.WARNING) -> None:
    """Log one tenant's outcome (and, at ``differences_level``, what still differs)."""
    for difference in result.differences:
        log.log(
            differences_level,
            "tenant %s: still differs from the model: %s",
            result.name,
            difference,
        )
    if result.status == "failed":
        log.error("tenant %s: failed in %.3fs: %s", result.name, result.duration_s, result.error)
        return
    if result.status == "partial":
        log.warning("tenant %s: partial in %.3fs: %s", result.name, result.duration_s, result.error)
        return
    log.info(
        "tenant %s: %s in %.3fs (%d operations, %d withheld)",
        result.name,
        result.status,
        result.duration_s,
        len(result.operations),
        len(result.withheld),
    )
