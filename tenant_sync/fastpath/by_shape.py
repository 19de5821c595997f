"""The shape stage of a run: read every tenant's shape, compare each distinct shape once.

:func:`plan_by_shape` is what :meth:`~tenant_sync.TenantSync.sync_all` and
:meth:`~tenant_sync.TenantSync.drift` run between discovery and the workers.  Its
:class:`TenantShapes` settles the tenants a change set settles without touching them
(up to date; planned, in a dry run), and gives every other tenant of a planned shape
its :class:`~tenant_sync.fastpath.round_trip.RoundTrip`.  The shapes also tell which
schemas look like no tenant (see :mod:`tenant_sync.selection`): those are not compared.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..changes import Changes, strict_failure
from ..engine import connect
from ..failures import failure_message
from ..model import Model
from ..options import SyncOptions
from ..plan import ignored_tables
from ..report import Drift, TenantResult
from ..selection import not_tenants_among
from ..session import set_up_session
from .catalog import Shape, read_shapes
from .round_trip import RoundTrip
from .shapes import ChangeSet, group_by_shape, plan_shape

__all__ = ["SHAPE_CHUNK_MIN", "TenantShapes", "plan_by_shape"]

log = logging.getLogger(__name__)

#: Fewest tenants per chunk of the catalog pass; bigger runs read up to ``workers`` chunks at once.
SHAPE_CHUNK_MIN = 500


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


def plan_by_shape(
    engine: Engine,
    names: list[str],
    model: Model,
    options: SyncOptions,
    *,
    pool: ThreadPoolExecutor,
    workers: int,
    vet: frozenset[str] = frozenset(),
) -> TenantShapes:
    """Read every tenant's shape and compare each distinct shape with the model once.

    ``pool`` runs the comparisons, ``workers`` connections at most; the pass itself runs
    in up to ``workers - 1`` chunks at once.  The first tenant is compared with the
    model while the pass runs: most often all tenants share its shape, and the
    comparison (which builds the model's state once, and runs Alembic if the shape
    differs from it) is then out of the way when the pass ends.  Of ``vet`` (the names
    the not-a-tenant rule applies to), those that look like no tenant are not compared.
    """
    if not names:
        return TenantShapes()
    first = pool.submit(plan_shape, engine, names[0], model, options, vet=names[0] in vet)
    shapes = _read_shapes(engine, names, options, workers)
    relations = {name: shapes[name].relations for name in vet if name in shapes}
    not_tenants = not_tenants_among(relations, model.tenant_table_names)
    tenants = [name for name in names if name not in not_tenants]
    changes = _compare_shapes(engine, tenants, shapes, model, options, pool, first)
    return TenantShapes(shapes, changes)


def _read_shapes(
    engine: Engine, names: list[str], options: SyncOptions, workers: int
) -> dict[str, Shape]:
    """Every tenant's shape, read in a few chunks at once on the workers' connections.

    One query per chunk keeps the pass linear and lets the server use more than one
    core; one connection is left to the first tenant's comparison, which runs
    meanwhile.  A chunk whose query fails is left out: its tenants are then compared
    one by one, and each reports its own error.
    """
    count = max(1, min(max(1, workers - 1), len(names) // SHAPE_CHUNK_MIN))
    chunks = [names[i::count] for i in range(count)]
    shapes: dict[str, Shape] = {}
    with ThreadPoolExecutor(count, thread_name_prefix="tenant_sync") as readers:
        for chunk_shapes in readers.map(lambda chunk: _read_chunk(engine, chunk, options), chunks):
            shapes.update(chunk_shapes)
    return shapes


def _read_chunk(engine: Engine, names: list[str], options: SyncOptions) -> dict[str, Shape]:
    with connect(engine) as conn, conn.begin():
        set_up_session(conn, "pg_catalog", options.lock_timeout, None)
        try:
            return read_shapes(conn, names, ignored_tables(options), options.version_table)
        except DBAPIError as exc:
            log.warning(
                "reading the structure of %d tenants failed, comparing them one by one: %s",
                len(names),
                failure_message(exc),
            )
            return {}


def _compare_shapes(
    engine: Engine,
    names: list[str],
    shapes: dict[str, Shape],
    model: Model,
    options: SyncOptions,
    pool: ThreadPoolExecutor,
    first: Future[ChangeSet],
) -> dict[str, ChangeSet]:
    """Compare one representative per shape with the model; map each tenant to its set.

    ``first`` is the change set of the first tenant's shape, begun before the pass.  A
    shape whose comparison
    fails is left out: its tenants are then synced one by one, and each reports its own
    error.
    """
    groups = group_by_shape(shapes, names)
    ready = _early_change_set(first)
    changes: dict[str, ChangeSet] = {}
    futures: dict[Future[ChangeSet], list[str]] = {}
    found: list[tuple[ChangeSet, list[str]]] = []
    for tenants in groups.values():
        shape = shapes[tenants[0]]
        if ready is not None and ready.shape.fingerprint == shape.fingerprint:
            found.append((ready, tenants))
        else:
            future = pool.submit(plan_shape, engine, tenants[0], model, options, shape)
            futures[future] = tenants
    for future, tenants in futures.items():
        try:
            found.append((future.result(), tenants))
        except Exception as exc:
            log.warning(
                "comparing %s (shape of %d tenants) failed, syncing them one by one: %s",
                tenants[0],
                len(tenants),
                failure_message(exc),
            )
    for change_set, tenants in found:
        changes.update(dict.fromkeys(tenants, change_set))
    if groups:
        log.info(
            "%d tenants in %d distinct shapes (%d compared with the model)",
            sum(map(len, groups.values())),
            len(groups),
            len(futures) + (ready is not None),
        )
    return changes


def _early_change_set(first: Future[ChangeSet]) -> ChangeSet | None:
    """The first tenant's change set, begun before the pass, or None if it could not be made."""
    try:
        return first.result()
    except Exception as exc:
        # Its shape is then compared again after the pass, which reports any error.
        log.debug("comparing the first tenant early failed: %s", failure_message(exc))
        return None
