"""The shape stage of a run: read every tenant's shape, compare each distinct shape once.

:func:`stream_by_shape` is what :meth:`~tenant_sync.TenantSync.sync_all` and
:meth:`~tenant_sync.TenantSync.drift` run between discovery and the workers.  Its
:class:`TenantShapes` settles the tenants a change set settles without touching them
(up to date; planned, in a dry run), and gives every other tenant of a planned shape
its :class:`~tenant_sync.fastpath.round_trip.RoundTrip`.  The shapes also tell which
schemas look like no tenant (see :mod:`tenant_sync.selection`): those are not compared.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..changes import Changes, strict_failure
from ..engine import connect, server_key
from ..failures import failure_message
from ..model import Model
from ..online import online_rows
from ..options import SyncOptions
from ..plan import ignored_tables
from ..report import Drift, TenantResult
from ..selection import Selection, not_tenants_among
from ..session import set_up_session
from ..yardstick import build_model_state
from .catalog import Shape, read_shapes
from .round_trip import RoundTrip
from .shapes import ChangeSet, group_by_shape, plan_shape
from .shared import SharedComparisons

__all__ = ["SHAPE_CHUNK", "TenantShapes", "pass_chunks", "stream_by_shape"]

log = logging.getLogger(__name__)

#: Most tenants per chunk of the catalog pass, bar the first; ``workers`` chunks are read
#: at once.
SHAPE_CHUNK = 500
#: Most tenants in the first chunk, read beside the others: its tenants start their
#: round trips while the pass reads the rest.
FIRST_CHUNK = 100


@dataclass(frozen=True)
class TenantShapes:
    """Each tenant's shape as the catalog pass read it, and its shape's change set.

    A tenant is missing from ``changes`` when its shape could not be read or compared:
    it is then compared alone, and reports its own error, unless it looks like no tenant
    (see :mod:`tenant_sync.selection`): that one is not compared at all.
    """

    shapes: dict[str, Shape] = field(default_factory=dict)
    changes: dict[str, ChangeSet] = field(default_factory=dict)

    def settled(self, schema: str, dry_run: bool, strict: bool = False) -> TenantResult | None:
        """The result of a tenant its change set settles without touching it, else None.

        With ``strict``, a tenant that would still differ from the model fails, untouched.
        """
        changes = self.changes.get(schema)
        if changes is None or changes.changes.conflicts:
            return None  # compared alone (a rename conflict counts its own rows)
        if strict and changes.changes.differences:
            error = strict_failure(changes.changes.differences)
            return TenantResult.of(schema, "failed", changes.changes, error=error, attempts=0)
        if changes.up_to_date:
            return TenantResult.of(schema, "unchanged", changes.changes, attempts=0)
        if dry_run and not changes.changes.checks:
            return TenantResult.of(schema, "planned", changes.changes, attempts=0)
        return None

    def planned(self, schema: str) -> Changes | None:
        """The changes the tenant's shape needs, if there are any to run, else None."""
        changes = self.changes.get(schema)
        if changes is None or changes.up_to_date or changes.changes.conflicts:
            return None
        return changes.changes

    def round_trip(self, schema: str, model: Model) -> RoundTrip | None:
        """The trip that applies the tenant's change set, or None if it has none to apply."""
        changes, shape = self.changes.get(schema), self.shapes.get(schema)
        if changes is None or shape is None or changes.up_to_date or changes.changes.conflicts:
            return None
        return changes.round_trip(schema, shape, model.fingerprint)

    def planned_words(self) -> list[str]:
        """Every distinct shape's operations and withheld changes, in words."""
        distinct = {id(changes): changes for changes in self.changes.values()}
        return [
            words
            for changes in distinct.values()
            for words in (*changes.operations, *changes.changes.withheld)
        ]

    @classmethod
    def gathered(cls, chunks: Iterable[tuple[list[str], TenantShapes]]) -> TenantShapes:
        """The shapes and change sets of every chunk (see :func:`stream_by_shape`), as one."""
        whole = cls()
        for _, chunk in chunks:
            whole.shapes.update(chunk.shapes)
            whole.changes.update(chunk.changes)
        return whole

    def drifts(self) -> list[Drift]:
        """One :class:`~tenant_sync.Drift` per distinct shape that differs from the model."""
        groups: dict[str, tuple[ChangeSet, list[str]]] = {}
        for schema, changes in self.changes.items():
            groups.setdefault(changes.shape.fingerprint, (changes, []))[1].append(schema)
        return [
            Drift.of(tuple(tenants), changes.changes)
            for changes, tenants in groups.values()
            if not changes.matches_model
        ]


def pass_chunks(
    engine: Engine,
    selection: Selection,
    model: Model,
    options: SyncOptions,
    pool: ThreadPoolExecutor,
    workers: int,
    shared: SharedComparisons | None = None,
) -> Iterable[tuple[list[str], TenantShapes]]:
    """The catalog pass over ``selection``, chunk by chunk (:func:`stream_by_shape`); with
    ``verify``, one chunk of every tenant, with no shapes: each is compared alone."""
    if options.verify:
        return [(selection.names, TenantShapes())]
    vet = frozenset(selection.unvetted)
    return stream_by_shape(
        engine,
        selection.names,
        model,
        options,
        pool=pool,
        workers=workers,
        vet=vet,
        shared=shared,
    )


def stream_by_shape(
    engine: Engine,
    names: list[str],
    model: Model,
    options: SyncOptions,
    *,
    pool: ThreadPoolExecutor,
    workers: int,
    vet: frozenset[str] = frozenset(),
    shared: SharedComparisons | None = None,
) -> Iterator[tuple[list[str], TenantShapes]]:
    """Read every tenant's shape and compare each distinct shape with the model once,
    yielding ``(names, their shapes)`` chunk by chunk, in order, as soon as one is known.

    The pass reads a small first chunk beside the others, ``workers`` chunks at once, so
    that the tenants of the first chunk are synced while the pass reads the rest: the
    pass and the round trips use the server at once.  ``pool`` runs the comparisons.
    The first tenant is compared with the model while the pass runs: most often all
    tenants share its shape, and the comparison (which builds the model's state once,
    and runs Alembic if the shape differs from it) is then out of the way when the first
    chunk arrives.  Of ``vet``
    (the names the not-a-tenant rule applies to), those that look like no tenant are
    not compared.  A chunk whose query fails yields no shapes: its tenants are then
    compared one by one, and each reports its own error.  With ``shared``, a fleet's
    databases on one server share their comparisons (see :mod:`.shared`).
    """
    if not names:
        return
    comparisons = _Comparisons(engine, model, options, pool, shared)
    comparisons.begin(names[0], vet=names[0] in vet)
    chunks = _chunks(names)
    readers = min(len(chunks), max(2, workers))
    with ThreadPoolExecutor(readers, thread_name_prefix="tenant_sync") as reading:
        read = [reading.submit(_read_chunk, engine, chunk, options) for chunk in chunks]
        try:
            for chunk, future in zip(chunks, read, strict=True):
                yield chunk, _chunk_shapes(chunk, future.result(), vet, model, comparisons)
        finally:  # interrupted, or the caller stopped: the chunks not begun are not read
            for future in read:
                future.cancel()
    comparisons.log_counts()


def _chunks(names: list[str]) -> list[list[str]]:
    """A small first chunk, then the rest in equal chunks of at most :data:`SHAPE_CHUNK`.

    Read a few at once, in order, they stream to the workers as they come.  Bigger
    chunks cost more per tenant (measured at 10,000 tenants on one connection: 6.9 s in
    chunks of 3,300, 6.0 s in chunks of 500): their sorts and aggregates outgrow memory.
    """
    first, rest = names[:FIRST_CHUNK], names[FIRST_CHUNK:]
    count = max(1, -(-len(rest) // SHAPE_CHUNK))
    size = -(-len(rest) // count) if rest else 0
    return [first] + [rest[i : i + size] for i in range(0, len(rest), size or 1)]


def _chunk_shapes(
    chunk: list[str],
    shapes: dict[str, Shape],
    vet: frozenset[str],
    model: Model,
    comparisons: _Comparisons,
) -> TenantShapes:
    """A chunk's shapes and change sets; a schema of ``vet`` that looks like no tenant is
    not compared."""
    relations = {name: shapes[name].relations for name in chunk if name in vet and name in shapes}
    not_tenants = not_tenants_among(relations, model.tenant_table_names)
    tenants = [name for name in chunk if name not in not_tenants]
    return TenantShapes(shapes, comparisons.change_sets(tenants, shapes))


class _Comparisons:
    """Each distinct shape compared with the model once, across the chunks of a pass."""

    def __init__(
        self,
        engine: Engine,
        model: Model,
        options: SyncOptions,
        pool: ThreadPoolExecutor,
        shared: SharedComparisons | None = None,
    ) -> None:
        self.engine, self.model, self.options, self.pool = engine, model, options, pool
        self.shared, self.server = shared, server_key(engine.url)
        self.first: Future[ChangeSet] | None = None
        self.own: set[Future[ChangeSet]] = set()  # the comparisons begun here, not shared
        self.by_fingerprint: dict[str, Future[ChangeSet]] = {}
        self.failed: set[str] = set()
        self.tenants = 0
        self.seen: set[str] = set()

    def begin(self, first: str, vet: bool) -> None:
        """Compare the first tenant with the model before its shape is read by the pass
        (with ``vet``, unless it looks like no tenant): the server's one early
        comparison, when shared.  The model's state is built beside it, on a worker of
        its own: a first tenant that differs is compared by autogenerate meanwhile."""
        submit = functools.partial(self._begin_early, first, vet)
        self.first = submit() if self.shared is None else self.shared.early(self.server, submit)

    def _begin_early(self, first: str, vet: bool) -> Future[ChangeSet]:
        ignored = ignored_tables(self.options)
        self.pool.submit(build_model_state, self.engine, self.model, ignored, self.options)
        return self._submit(first, None, vet, overlap=True)

    def change_sets(self, names: list[str], shapes: dict[str, Shape]) -> dict[str, ChangeSet]:
        """Each of ``names`` mapped to its shape's change set; a shape whose comparison
        failed is left out (its tenants are then synced one by one, reporting their error)."""
        groups = group_by_shape(shapes, names)
        if groups and not self.by_fingerprint and self.tenants == 0:
            self._adopt_first()
        for fingerprint, tenants in groups.items():
            if fingerprint not in self.by_fingerprint:
                self.by_fingerprint[fingerprint] = self._compare(tenants[0], shapes[tenants[0]])
        changes: dict[str, ChangeSet] = {}
        for fingerprint, tenants in groups.items():
            self.tenants += len(tenants)
            self.seen.add(fingerprint)
            change_set = self._result(fingerprint, tenants, shapes[tenants[0]])
            if change_set is not None:
                changes.update(dict.fromkeys(tenants, change_set))
        return changes

    def _compare(self, representative: str, shape: Shape) -> Future[ChangeSet]:
        """The comparison of ``representative``'s shape: begun here, or shared."""
        submit = functools.partial(self._submit, representative, shape, False)
        if self.shared is None:
            return submit()
        return self.shared.of_shape(self.server, shape.fingerprint, submit)

    def _submit(
        self, representative: str, shape: Shape | None, vet: bool, overlap: bool = False
    ) -> Future[ChangeSet]:
        future = self.pool.submit(
            plan_shape,
            self.engine,
            representative,
            self.model,
            self.options,
            shape,
            vet=vet,
            overlap=overlap,
        )
        self.own.add(future)
        return future

    def _adopt_first(self) -> None:
        if self.first is None:
            return
        ready = _early_change_set(self.first)
        if ready is not None:
            self.by_fingerprint[ready.shape.fingerprint] = self.first
            if self.shared is not None:
                self.shared.adopt(self.server, ready, self.first)

    def _result(self, fingerprint: str, tenants: list[str], shape: Shape) -> ChangeSet | None:
        try:
            try:
                return self.by_fingerprint[fingerprint].result()
            except Exception:
                if self.by_fingerprint[fingerprint] in self.own:
                    raise
                # Another database's comparison failed (that database going down, say):
                # compared again here, so that an error kept is this database's own.
                self.by_fingerprint[fingerprint] = self._compare(tenants[0], shape)
                return self.by_fingerprint[fingerprint].result()
        except Exception as exc:
            if fingerprint not in self.failed:
                self.failed.add(fingerprint)
                log.warning(
                    "comparing %s (shape of %d tenants) failed, syncing them one by one: %s",
                    tenants[0],
                    len(tenants),
                    failure_message(exc),
                )
            return None

    def log_counts(self) -> None:
        """Log how many tenants and distinct shapes the pass saw."""
        if self.tenants:
            log.info(
                "%d tenants in %d distinct shapes (%d compared with the model)",
                self.tenants,
                len(self.seen),
                sum(1 for future in self.own if future.done() and not future.exception()),
            )


def _read_chunk(engine: Engine, names: list[str], options: SyncOptions) -> dict[str, Shape]:
    with connect(engine) as conn, conn.begin():
        set_up_session(conn, "pg_catalog", options.lock_timeout, None)
        try:
            return read_shapes(
                conn, names, ignored_tables(options), options.version_table, online_rows(options)
            )
        except DBAPIError as exc:
            log.warning(
                "reading the structure of %d tenants failed, comparing them one by one: %s",
                len(names),
                failure_message(exc),
            )
            return {}


def _early_change_set(first: Future[ChangeSet]) -> ChangeSet | None:
    """The first tenant's change set, begun before the pass, or None if it could not be made."""
    try:
        return first.result()
    except Exception as exc:
        # Its shape is then compared again after the pass, which reports any error.
        log.debug("comparing the first tenant early failed: %s", failure_message(exc))
        return None
