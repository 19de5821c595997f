"""One database of a fleet, synced on a thread of its own: its results, and its outcome.

A :class:`DatabaseSync` runs its database's :meth:`TenantSync.sync_all
<tenant_sync.TenantSync.sync_all>` and watches its results: when a tenant fails, it asks
the database whether it still answers.  One that does not is *down*: it is cancelled, so
that its remaining tenants are reported ``skipped`` with the database's error, in
moments, instead of each failing on its own after its retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import sqlalchemy as sa

from ..coordinator import TenantSync
from ..engine import connect, masked_url
from ..errors import TenantSyncError
from ..report import STATUSES, TenantResult
from ..run_header import DatabaseRun
from ..runner import NOT_STARTED, FleetShare, not_started
from ..tenant import CANCELLED

__all__ = ["DatabaseSync"]

log = logging.getLogger("tenant_sync.fleet")


class DatabaseSync:
    """The run of one database ``name`` of a fleet, synced by ``ts``.

    ``schemas``: the registry's tenants of this database, or None to discover them.
    ``cancel``: the fleet's own cancellation, which this run also obeys.
    ``share``: what the fleet's databases share during this run only (the comparisons,
    and the slots of ``max_workers``).
    """

    def __init__(
        self,
        name: str,
        ts: TenantSync,
        schemas: list[str] | None,
        cancel: threading.Event,
        run_id: str,
        share: FleetShare | None = None,
    ) -> None:
        self.name, self.ts, self.schemas = name, ts, schemas
        self._share = share
        self._fleet_cancel = cancel
        self._run_id = run_id
        self._results: list[TenantResult] = []
        self._error: str | None = None  # the connection error, once the database is down
        self._duration_s = 0.0

    def run(self, dry_run: bool, deliver: Callable[[TenantResult], object]) -> None:
        """Sync this database, passing each result to ``deliver`` (from this thread)."""
        started = time.monotonic()
        self.ts.on_result = lambda result: self._seen(result, deliver)
        if self._fleet_cancel.is_set():  # cancelled before this database started
            self._results = [not_started(schema) for schema in self.schemas or ()]
            return
        try:
            if self.schemas is not None:
                self.ts.tenants = list(self.schemas)
            # Shared for this run only: a later run of ts alone compares for itself.
            self.ts.fleet_share = self._share
            report = self.ts.sync_all(dry_run, run_id=self._run_id)
            self._results = report.results
        except (TenantSyncError, sa.exc.SQLAlchemyError) as exc:
            # Unreachable at the start, or lost in the middle of the catalog pass.
            self._down(_one_line(exc))
            partial = self.ts.last_report
            self._results = partial.results if partial is not None else self._unreached()
        finally:
            self.ts.fleet_share = None
            self._duration_s = time.monotonic() - started
        if self._error is not None:
            self._results = [self._explained(result) for result in self._results]

    def results(self) -> list[TenantResult]:
        """This database's results, each naming the database."""
        return [replace(result, database=self.name) for result in self._results]

    def outcome(self) -> DatabaseRun:
        """How this database's run went, for the fleet's report."""
        counts = {status: 0 for status in STATUSES}
        for result in self._results:
            counts[result.status] += 1
        return DatabaseRun(
            name=self.name,
            url=masked_url(self.ts.engine.url),
            counts={status: count for status, count in counts.items() if count},
            duration_s=round(self._duration_s, 3),
            error=self._error,
        )

    def _seen(self, result: TenantResult, deliver: Callable[[TenantResult], object]) -> None:
        if result.status == "failed" and self._error is None and not self._answers():
            self.ts.cancel()
        deliver(result)  # named already: the database's TenantSync has name=

    def _answers(self) -> bool:
        """Whether the database still takes a connection; if not, it is marked down."""
        try:
            with connect(self.ts.engine) as conn:
                conn.execute(sa.text("SELECT 1"))
        except (TenantSyncError, sa.exc.SQLAlchemyError) as exc:
            self._down(_one_line(exc))
            return False
        return True

    def _down(self, error: str) -> None:
        self._error = error
        log.error("%s; its remaining tenants are skipped", self._unreachable)

    @property
    def _unreachable(self) -> str:
        return f"database {self.name} unreachable: {self._error}"

    def _unreached(self) -> list[TenantResult]:
        """With a registry, its tenants of a database never reached, as skipped."""
        return [not_started(schema, self._unreachable) for schema in self.schemas or ()]

    def _explained(self, result: TenantResult) -> TenantResult:
        """A tenant skipped because the database went down says so."""
        if result.status == "skipped" and result.error in (NOT_STARTED, CANCELLED):
            return replace(result, error=self._unreachable)
        return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
