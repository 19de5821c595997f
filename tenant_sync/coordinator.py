"""The :class:`TenantSync` facade: discover, plan by shape, settle, run the rest, report.

Workers (threads of the pool made here; the catalog pass reads its chunks on a few
more) get an immutable :class:`~tenant_sync.tenant.TenantJob` and return a
TenantResult; results are gathered, logged and passed to ``on_result`` in the calling
thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL, Engine

from .classes import AllowSpec, ChangeClass, parse_allow
from .discovery import (
    ExcludeSpec,
    TenantsSpec,
    check_tenant_names,
    exclude_items,
    no_match_note,
    select_tenants,
)
from .engine import connect, make_engine, masked_url, usable_workers
from .fastpath.signup import SignupCache
from .history import HistoryEntry, read_history
from .jobs import RunJobs
from .model import Model
from .online import OnlineMode
from .options import DEFAULT_VERSION_TABLE, SyncOptions
from .output.progress import ProgressLog
from .report import Drift, RunInfo, SyncReport, TenantResult
from .run_info import describe_model, gather_run_info
from .runner import FleetShare, JobRunner, log_result, not_started, warn_differences
from .selection import Selection
from .shards import Shard, check_shard, in_shard
from .steps import OnSignup, Step, StepFunctionT, Steps
from .waves import (
    FailureLimit,
    OrderSpec,
    Rollout,
    WaveSpec,
    check_rollout,
    ordered_by,
    rollout_options,
)

__all__ = ["TenantSync"]

log = logging.getLogger(__name__)


class TenantSync:
    """Keep every tenant schema in step with a SQLAlchemy model.

    :param engine_or_url: a SQLAlchemy :class:`~sqlalchemy.engine.Engine` (used as is,
        never altered) or a URL (tenant_sync builds and owns an engine sized for ``workers``).
    :param metadata: the model: a :class:`~sqlalchemy.schema.MetaData` or declarative base.
        Tables with ``schema=None`` go into every tenant; tables with a schema are shared.
    :param tenants: which schemas are tenants: None (every non-system schema); a string:
        the schema of exactly that name if there is one, else a SQL LIKE pattern such as
        ``"tenant\\_%"`` (``_`` and ``%`` are wildcards); a list of names; or a callable
        that gets a connection and returns names.  A selected schema that holds tables,
        none of them the model's, gets no DDL and is reported ``skipped``, unless it was
        chosen by name (a list, a callable's answer, a string that is its exact name).
    :param exclude: schemas left out of those ``tenants`` selects: a name or LIKE pattern
        (by the same rule), or a list of them.  :meth:`select_tenants` lists them.
    :param workers: tenants synced at once, each on its own connection and transaction.
    :param allow: which classes of change apply (see :mod:`tenant_sync.classes`): a set
        such as ``{"safe", "data_dependent", "rewrite"}``, or a callable that gets each
        change in words and its class and returns True to apply it.  By default ``safe``
        and ``data_dependent`` changes apply; the others are withheld, listed in each
        result's ``withheld`` and ``differences``.
    :param allow_destructive: apply every class, drops included (``allow`` is then ignored).
    :param accept: withheld changes the user has accepted, in words as results show them,
        or glob patterns (``"drop column *.legacy_id"``): still withheld and listed in
        ``accepted``, but no longer warned about nor counted as differences.
    :param strict: a tenant that would still differ from the model after the run (a
        withheld change not accepted) fails, untouched, instead of being synced in part.
    :param lock_timeout: seconds a tenant waits for a lock before it fails.
    :param statement_timeout: seconds any one statement may run before its tenant fails;
        None (the default) for no limit.
    :param retries: extra attempts for a tenant that failed on a transient error
        (connection lost, deadlock, lock timeout, serialization failure).
    :param retry_backoff: seconds before a tenant's first retry; doubled for each next one.
    :param version_table: the table in each tenant that records the fingerprint of the
        model it was last synced to.
    :param verify: compare every tenant with the model one by one (Alembic autogenerate
        per tenant) instead of once per distinct structure, and build every signup by a
        comparison instead of from the first signup's plan.  Slower; the result is the same.
    :param online: how changes to big tables run (see :mod:`tenant_sync.online`):
        ``"auto"`` (the default) takes the lock-safe path for tables of at least
        ``online_min_rows`` rows: indexes built ``CONCURRENTLY``, constraints added
        ``NOT VALID`` and validated after the tenant's transaction, NOT NULL through a
        validated CHECK; ``"always"`` for every table; ``"never"`` for none.
    :param online_min_rows: the fewest rows (as ``pg_class`` estimates them) that make a
        table big for ``online="auto"``.
    :param steps: data steps registered apart, in a :class:`~tenant_sync.steps.Steps`
        (see :mod:`tenant_sync.steps`); :meth:`step` registers more.
    :param on_result: called in the calling thread with each TenantResult as it finishes.
    :param model_name: how reports name the model, e.g. ``"myapp.models:Base"``; by
        default found from ``metadata`` (see :mod:`tenant_sync.run_info`).
    :param shard: ``(I, N)``: only share I (from 0) of N of the tenants, by a stable hash
        of the database's ``name`` and the schema (see :mod:`tenant_sync.shards`).
    :param name: how results name this database (a :class:`~tenant_sync.fleet.Fleet`
        names each of its own); by default None, and shards hash the URL's database name.

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
        *,
        exclude: ExcludeSpec = None,
        workers: int = 4,
        allow: AllowSpec | None = None,
        allow_destructive: bool = False,
        accept: Iterable[str] = (),
        strict: bool = False,
        lock_timeout: float = 5.0,
        statement_timeout: float | None = None,
        retries: int = 2,
        retry_backoff: float = 0.2,
        version_table: str = DEFAULT_VERSION_TABLE,
        verify: bool = False,
        online: OnlineMode = "auto",
        online_min_rows: int = 100_000,
        steps: Steps | Iterable[Step] = (),
        on_result: Callable[[TenantResult], object] | None = None,
        model_name: str | None = None,
        shard: Shard | None = None,
        name: str | None = None,
    ) -> None:
        self.shard = check_shard(shard) if shard is not None else None
        self.name = name
        self.options = SyncOptions(
            workers=workers,
            allow=parse_allow(allow, allow_destructive),
            accept=(accept,) if isinstance(accept, str) else tuple(accept),
            strict=strict,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            version_table=version_table,
            verify=verify,
            online=online,
            online_min_rows=online_min_rows,
        )
        self.model = Model(metadata)
        self.model_name = model_name or describe_model(metadata, self.model.metadata)
        self.tenants = tenants
        self.exclude = exclude_items(exclude)
        self.on_result = on_result
        self.engine, self._owns_engine = make_engine(engine_or_url, workers)
        self._cancel = threading.Event()
        self._signup_cache = SignupCache()
        self._steps = Steps(steps)
        self._jobs = RunJobs(
            self.engine, self.model, self.options, self._steps, self._cancel, self._usable_workers
        )
        self.last_report: SyncReport | None = None
        #: Whether a run ends with one warning per remaining difference (a fleet, which
        #: warns once for all its databases, turns it off).
        self.warns_at_end = True
        #: What a fleet's run shares among its databases (the fleet sets it for the run).
        self.fleet_share: FleetShare | None = None

    def __repr__(self) -> str:
        return f"<TenantSync {masked_url(self.engine.url)} workers={self.options.workers}>"

    def in_shard(self, schema: str) -> bool:
        """True when ``schema`` is in this run's ``shard`` (always, without one)."""
        return in_shard(self.name or self.engine.url.database or "", schema, self.shard)

    def list_tenants(self) -> list[str]:
        """Return the tenant schema names, as selected by ``tenants``, less ``exclude``.

        Schemas that look like no tenant are listed too (a sync reports them ``skipped``);
        :meth:`select_tenants` tells them apart.

        :raises DatabaseConnectionError: the database cannot be reached.
        :raises DiscoveryError: a ``tenants`` callable raised.
        :raises ConfigurationError: a listed name or a pattern is invalid, or a name repeated.
        """
        return self._select().names

    def select_tenants(self) -> Selection:
        """Return which schemas ``tenants`` and ``exclude`` select, with the rule of each.

        The :class:`~tenant_sync.selection.Selection` lists each selected schema with its
        rule (``every``, ``name``, ``pattern``, ``callable``), each excluded one with the
        ``exclude`` item that left it out, and those that look like no tenant with the
        tables they hold.  Reads the catalog (two queries), changes nothing; raises as
        :meth:`list_tenants` does.
        """
        return self._jobs.vet(self._select(warn=True), {}, warn=False)

    def sync_all(
        self,
        dry_run: bool = False,
        *,
        waves: WaveSpec = None,
        max_failures: FailureLimit = 0,
        order: OrderSpec = None,
        run_id: str | None = None,
    ) -> SyncReport:
        """Sync every tenant, ``workers`` at a time, and return the report.

        Each tenant is synced in its own transaction: fully or not at all.  With
        ``dry_run=True`` nothing is changed; each result lists what would run.
        :meth:`cancel` (or Ctrl-C) stops starting new tenants: those in flight finish,
        the rest are reported ``skipped``.  Ctrl-C is re-raised once the run has
        wound down; the report is then in :attr:`last_report`.

        ``waves`` stages the run (e.g. ``[["tenant_demo"], 0.05, 1.0]``): each wave
        starts once the one before has finished with at most ``max_failures`` failed
        tenants (a count or a fraction of the wave); the tenants of the waves not
        started are reported ``skipped``.  ``order`` (``"size"``: largest last; or a
        sort key) is the order the tenants are taken in.  See :mod:`tenant_sync.waves`.

        Unless ``verify=True``, tenants are grouped by the fingerprint of their
        structure, read for all of them in one pass over the catalog: each distinct
        shape is compared with the model once, tenants already matching it are
        reported ``unchanged`` at once, and the others apply their shape's SQL in one
        round trip, after re-checking under their own lock that they are as the pass
        saw them (see :mod:`tenant_sync.fastpath`).

        ``run_id`` is the id the run's history entries carry (a fleet gives each of its
        databases its own); by default a new one.

        :raises ConfigurationError: bad ``waves``, ``max_failures`` or ``order``, or a
            wave names a schema the run does not select; raised before any tenant runs.
        """
        check_rollout(waves, max_failures, order)
        self._cancel.clear()
        started = time.monotonic()
        report = SyncReport(dry_run=dry_run)
        # Discovery errors are raised before the run starts: no report, no summary line.
        selection = self._select(warn=True)
        names = ordered_by(selection.names, order, self.engine)
        rollout = Rollout(waves, names, max_failures)
        report.run = self.run_info(dry_run)
        if run_id is not None:
            report.run = replace(report.run, run_id=run_id)
        run_id = report.run.run_id
        if rollout.staged:
            options = {**report.run.options, **rollout_options(waves, max_failures, order)}
            report.run = replace(report.run, options=options)
        # Filled as results come in, so that the report is complete even when Ctrl-C
        # is re-raised from the middle of the run.
        results: dict[str, TenantResult] = {}
        try:
            if not names and self.shard is not None:  # a share may well hold no tenant
                report.note = f"share {self.shard[0]}/{self.shard[1]} holds no tenant"
                log.info("no tenants to sync: %s", report.note)
            elif not names:
                report.note = no_match_note(self.tenants, selection)
                log.warning("no tenants to sync: %s", report.note)
            progress = ProgressLog(len(names), started)
            share = self.fleet_share or FleetShare()
            with ThreadPoolExecutor(
                self._usable_workers(), thread_name_prefix="tenant_sync"
            ) as pool:
                runner = JobRunner(
                    self.engine,
                    pool,
                    self._cancel,
                    results,
                    progress,
                    self.on_result,
                    self.name,
                    share.slots,
                )
                for number, wave in rollout:
                    jobs = self._jobs.by_chunk(
                        pool, selection.only(wave), dry_run, runner, run_id, share.comparisons
                    )
                    runner.run(jobs)
                    if rollout.staged:
                        statuses = {name: results[name].status for name in wave if name in results}
                        rollout.finish(number, statuses, self._cancel.is_set())
        finally:
            not_run = rollout.not_run() if rollout.staged else {}
            report.waves = rollout.outcomes
            report.results = [
                results.get(name)
                or replace(not_started(name, not_run.get(name)), database=self.name)
                for name in names
            ]
            self._finish(report, started)
        return report

    def run_info(self, dry_run: bool = False) -> RunInfo:
        """The header of a run started now: database (masked), model, versions, options.

        :meth:`sync_all` puts it on its report.  :meth:`sync_tenant` returns a result,
        not a report: to keep signups as a report, ``SyncReport(results, run=ts.run_info())``.
        """
        return gather_run_info(
            self.engine,
            self.model,
            self.model_name,
            self.tenants,
            self.options,
            dry_run,
            self.exclude,
        )

    def drift(self) -> list[Drift]:
        """List, without changing anything, how tenants deviate from the model.

        Returns one :class:`~tenant_sync.Drift` per distinct structure that differs
        from the model: its tenants, the operations a sync would run and the
        destructive changes it would withhold.  Tenants that match are left out.  A
        declared rename (``info={"renamed_from": ...}``) that no tenant needs any more is
        named in a warning: the hint can go.  Schemas that look like no tenant are left
        out, each named in a warning.
        """
        return self._jobs.drifts(self._select(warn=True))

    def sync_tenant(self, schema: str, create: bool = True, dry_run: bool = False) -> TenantResult:
        """Sync one tenant in the calling thread, creating its schema first if ``create``.

        Made for signup: the schema is created and built in one transaction, under
        the tenant's advisory lock, so concurrent calls for the same tenant (and a
        concurrent :meth:`sync_all`) serialize: one builds it, the others find it
        unchanged.  A failure is returned as a ``failed`` result, not raised.

        The first signup compares its empty schema with the model; later ones build
        from that plan in one round trip, without reflecting the catalog (see
        :mod:`tenant_sync.fastpath.signup`), unless ``verify=True``.
        """
        check_tenant_names([schema], self.model.shared_schemas)
        cache = None if self.options.verify else self._signup_cache
        result = replace(self._jobs.signup(schema, create, dry_run, cache), database=self.name)
        log_result(result)
        return result

    def step(
        self,
        name: str,
        *,
        before: ChangeClass | None = "data_dependent",
        batch_size: int | None = None,
        on_signup: OnSignup = "skip",
    ) -> Callable[[StepFunctionT], StepFunctionT]:
        """Register a data step that runs once in each tenant (a decorator): see
        :meth:`Steps.step <tenant_sync.steps.Steps.step>`.

        :raises ConfigurationError: a bad argument, or a name registered already.
        """
        return self._steps.step(name, before=before, batch_size=batch_size, on_signup=on_signup)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The data steps registered with :meth:`step`, in the order they run."""
        return tuple(self._steps)

    def history(self, schema: str, limit: int | None = None) -> list[HistoryEntry]:
        """The tenant's history, newest first: one entry per change a sync made in it, written
        in the change's own transaction (see :mod:`tenant_sync.history`); empty if none.

        Each entry's ``run_id`` is that of the report of the run that made it
        (``report.run.run_id``).

        :raises DatabaseConnectionError: the database cannot be reached.
        """
        check_tenant_names([schema], self.model.shared_schemas)
        with connect(self.engine) as conn, conn.begin():
            return read_history(conn, schema, limit)

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

    def _select(self, warn: bool = False) -> Selection:
        """The selection; with ``warn``, each item that selects nothing named in a warning."""
        with connect(self.engine) as conn, conn.begin():
            selection = select_tenants(conn, self.tenants, self.exclude, self.model.shared_schemas)
        if self.shard is not None:
            selection = selection.only([n for n in selection.names if self.in_shard(n)])
        for words in selection.unmatched if warn else ():
            log.warning("%s", words)
        return selection

    def _usable_workers(self) -> int:
        return usable_workers(self.engine, self._owns_engine, self.options.workers)

    def _finish(self, report: SyncReport, started: float) -> None:
        report.duration_s = time.monotonic() - started
        report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        report.cancelled = self._cancel.is_set()
        self.last_report = report
        if self.warns_at_end:
            warn_differences(report.results)
        log.info("%s", report.summary())
