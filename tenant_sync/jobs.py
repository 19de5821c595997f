"""What each tenant of a chunk of the catalog pass needs: a result at once, or a job.

:class:`RunJobs` is what :class:`~tenant_sync.TenantSync` makes its jobs with;
:func:`chunk_jobs`, the step of :meth:`~tenant_sync.TenantSync.sync_all` between the
pass and the workers.  A tenant its shape settles (up to date; planned, in a dry run;
failed by ``strict``), or one that looks like no tenant, gets its result without a job;
every other tenant gets a :class:`~tenant_sync.tenant.TenantJob`: its shape's round trip,
a dry run's data checks, or a comparison alone.  A tenant with data steps to run (see
:mod:`tenant_sync.steps`, asked of every chunk's histories in a few queries) gets a job
that runs them, even when its shape is up to date; in a dry run, its result lists them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Engine

from .changes import Changes
from .classes import CHANGE_CLASSES
from .fastpath.by_shape import TenantShapes, pass_chunks
from .fastpath.catalog import Shape
from .fastpath.shared import SharedComparisons
from .fastpath.signup import SignupCache
from .model import Model
from .options import SyncOptions
from .plan import ignored_tables
from .renames import obsolete_hints
from .report import Drift, TenantResult
from .run_info import new_run_id
from .runner import JobRunner
from .selection import Selection, vet
from .steps import Step, Steps, done_steps_of, pending_steps
from .tenant import TenantJob, sync_one

__all__ = ["ChunkJobs", "RunJobs", "chunk_jobs"]

# What a run logs stays under the coordinator's name, whichever module writes it.
log = logging.getLogger("tenant_sync.coordinator")


@dataclass(frozen=True)
class RunJobs:
    """What a :class:`~tenant_sync.TenantSync` run makes its jobs with: the catalog pass's
    chunks, the vetting of non-tenants, and each chunk's results and jobs.

    ``steps`` is the TenantSync's own registry, which :meth:`~tenant_sync.TenantSync.step`
    adds to; ``workers`` says how many workers the engine can serve.
    """

    engine: Engine
    model: Model
    options: SyncOptions
    steps: Steps
    cancel: threading.Event
    workers: Callable[[], int]

    def job(self, schema: str, **fields: Any) -> TenantJob:
        """The job of one tenant, with the run's model, options and cancel event."""
        return TenantJob(schema, self.model, self.options, cancel=self.cancel, **fields)

    def signup(
        self, schema: str, create: bool, dry_run: bool, cache: SignupCache | None
    ) -> TenantResult:
        """Sync one tenant in the calling thread (``TenantSync.sync_tenant``): from the
        cache's plan in one round trip when it has one for a new schema."""
        steps = tuple(self.steps)
        trip = None
        if create and cache is not None and not dry_run:
            trip = cache.round_trip(schema, self.model.fingerprint, steps)
        job = self.job(
            schema,
            dry_run=dry_run,
            trip=trip,
            create=create,
            signup_cache=cache,
            run_id=new_run_id(),
            steps=steps,
        )
        return sync_one(self.engine, job)

    def drifts(self, selection: Selection) -> list[Drift]:
        """How the selected tenants deviate from the model, by shape (``TenantSync.drift``)."""
        with ThreadPoolExecutor(self.workers(), thread_name_prefix="tenant_sync") as pool:
            shapes = TenantShapes.gathered(self.chunks(pool, selection))
        selection = self.vet(selection, shapes.shapes)
        tenants = len(selection.names) - len(selection.not_tenants)
        if tenants and len(shapes.changes) == tenants:  # every tenant's plan is known
            for hint in obsolete_hints(self.model.metadata, shapes.planned_words()):
                log.warning(
                    "the rename hint on %s is no longer needed: no tenant has the old name", hint
                )
        return shapes.drifts()

    def chunks(
        self,
        pool: ThreadPoolExecutor,
        selection: Selection,
        shared: SharedComparisons | None = None,
    ) -> Iterable[tuple[list[str], TenantShapes]]:
        """The catalog pass over ``selection``, chunk by chunk (see
        :func:`~tenant_sync.fastpath.by_shape.pass_chunks`)."""
        workers = self.workers()
        return pass_chunks(self.engine, selection, self.model, self.options, pool, workers, shared)

    def by_chunk(
        self,
        pool: ThreadPoolExecutor,
        selection: Selection,
        dry_run: bool,
        runner: JobRunner,
        run_id: str,
        shared: SharedComparisons | None = None,
    ) -> Iterator[list[TenantJob]]:
        """The jobs of each chunk of the catalog pass, as it comes (see
        :func:`~tenant_sync.fastpath.by_shape.stream_by_shape`); the tenants a chunk
        settles without a job go straight to ``runner``.  ``shared``: a fleet's
        comparisons (see :mod:`~tenant_sync.fastpath.shared`)."""
        for names, shapes in self.chunks(pool, selection, shared):
            selection = self.vet(selection, shapes.shapes, among=names)
            chunk = chunk_jobs(
                self.engine,
                self.model,
                names,
                shapes,
                selection,
                tuple(self.steps),
                dry_run=dry_run,
                strict=self.options.strict,
                make_job=functools.partial(self.job, run_id=run_id),
            )
            for result in chunk.settled:
                runner.collect(result)
            yield [_online(job, shapes) for job in chunk.jobs]

    def vet(
        self,
        selection: Selection,
        read: dict[str, Shape],
        warn: bool = True,
        among: Collection[str] | None = None,
    ) -> Selection:
        """``selection`` with the non-tenants of ``among`` (default: all), each new one
        named in a warning if ``warn``."""
        relations = {name: shape.relations for name, shape in read.items()}
        ignored, tables = ignored_tables(self.options), self.model.tenant_table_names
        return vet(self.engine, selection, relations, tables, ignored, among, warn)


@dataclass
class ChunkJobs:
    """One chunk's tenants: those settled without a job, and the jobs of the others."""

    settled: list[TenantResult]
    jobs: list[TenantJob]


def chunk_jobs(
    engine: Engine,
    model: Model,
    names: Sequence[str],
    shapes: TenantShapes,
    selection: Selection,
    steps: Sequence[Step],
    *,
    dry_run: bool,
    strict: bool,
    make_job: Callable[..., TenantJob],
) -> ChunkJobs:
    """The results and jobs of the chunk's tenants ``names`` (see the module's documentation)."""
    pending = _pending(engine, model, names, shapes, steps, dry_run) if steps else {}
    chunk = ChunkJobs([], [])
    for name in names:
        settled = selection.skipped(name) or shapes.settled(name, dry_run, strict)
        to_run = pending.get(name, ())
        if settled is not None and (not to_run or settled.status in ("failed", "skipped")):
            chunk.settled.append(settled)
            continue
        if settled is not None and dry_run:
            chunk.settled.append(_listing(settled, to_run))
            continue
        trip = None if dry_run or to_run else shapes.round_trip(name, model)
        planned = shapes.planned(name) if dry_run else None
        if planned is not None and to_run:
            planned = checked_before(planned, to_run)
        fields: dict[str, Any] = {"steps": to_run, "up_to_date": settled is not None}
        chunk.jobs.append(make_job(name, dry_run=dry_run, trip=trip, planned=planned, **fields))
    return chunk


def _online(job: TenantJob, shapes: TenantShapes) -> TenantJob:
    """``job`` with its tables that take the online path, as the catalog pass found them:
    a tenant with any is compared alone, not by its shape's round trip."""
    shape = shapes.shapes.get(job.schema)
    if shape is None:
        return job  # looked up by the tenant itself, if its plan changes anything
    if shape.big_tables:
        return replace(job, trip=None, planned=None, online_tables=shape.big_tables)
    return replace(job, online_tables=frozenset())


def checked_before(changes: Changes, steps: Sequence[Step]) -> Changes:
    """``changes`` with only the data checks of the changes that run before the first of
    ``steps``: a step may change the rows the later ones depend on."""
    first = min(step.rank for step in steps)
    class_of = dict(zip(changes.operations, changes.classes, strict=True))
    checks = tuple(
        check
        for check in changes.checks
        if CHANGE_CLASSES.index(class_of.get(check.operation, "safe")) < first
    )
    return replace(changes, checks=checks)


def _pending(
    engine: Engine,
    model: Model,
    names: Sequence[str],
    shapes: TenantShapes,
    steps: Sequence[Step],
    dry_run: bool,
) -> dict[str, tuple[Step, ...]]:
    """Each tenant's steps not done; in a dry run, those it would run (a new tenant runs
    only its ``on_signup="run"`` steps)."""
    done = done_steps_of(engine, names)
    pending = {}
    for name in names:
        shape = shapes.shapes.get(name)
        new = dry_run and shape is not None and not set(shape.relations) & model.tenant_table_names
        to_run = pending_steps(steps, done.get(name, ()), new)
        if to_run:
            pending[name] = to_run
    return pending


def _listing(result: TenantResult, steps: Sequence[Step]) -> TenantResult:
    """A dry run's settled result, with the steps that would run."""
    status = "planned" if result.status == "unchanged" else result.status
    return replace(result, status=status, steps=[step.name for step in steps])
