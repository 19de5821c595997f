"""Compare one tenant per distinct shape with the model: its :class:`ChangeSet`.

Tenants with the same structure fingerprint (see :mod:`tenant_sync.fastpath.catalog`)
need the same operations, so Alembic autogenerate runs on one representative of each
shape, read-only, and its change set (operations in words, the rendered SQL, withheld
changes) is shared by every tenant of that shape.  Each tenant still applies it in its own
transaction, after re-checking under its own lock that it is as the pass saw it.

A shape found to match the model exactly is remembered in the database, in a comment
on the representative's version table, under a key made of the shape's fingerprint,
the model's fingerprint and the versions of the code that compared them.  The catalog
pass reads those comments with everything else, so later runs report every tenant of
that shape ``unchanged`` without running autogenerate, whose reflection queries scan
the whole catalog (about 5 s at 10,000 tenants).  Nothing about a tenant is trusted:
its structure is still read from the catalog on every run, and a tenant that drifts
has another fingerprint, which is compared afresh.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..apply import render_plan
from ..batch import execute_batch
from ..changes import Changes
from ..engine import unprepared
from ..model import Model
from ..options import SyncOptions
from ..plan import ignored_tables, plan_tenant
from ..session import check_schema_access, lock_tenant, set_up_session
from ..sql import literal, quote
from ..versions import library_versions
from .catalog import Shape, read_shapes
from .round_trip import RoundTrip

__all__ = [
    "ChangeSet",
    "ShapeChanged",
    "group_by_shape",
    "known_match",
    "match_key",
    "plan_shape",
    "record_match",
]

log = logging.getLogger(__name__)

#: Prefix of the version-table comment that records a shape matching the model.
MATCH_COMMENT_PREFIX = "tenant_sync: shape matches model "

# Bumped whenever the fingerprint or the comparison changes meaning, so that records
# written by an older tenant_sync are not believed.
_MATCH_FORMAT = "3"


@dataclass(frozen=True)
class ChangeSet:
    """What every tenant of one shape needs, planned on one representative tenant."""

    shape: Shape
    representative: str
    changes: Changes
    #: False when the change set comes from a recorded match, without a comparison.
    compared: bool = field(default=True, compare=False)

    @classmethod
    def matching(cls, shape: Shape, representative: str) -> ChangeSet:
        """The change set of a shape recorded as matching the model: nothing to do."""
        return cls(shape, representative, Changes(), compared=False)

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations every tenant of the shape runs, in words."""
        return self.changes.operations

    @property
    def up_to_date(self) -> bool:
        """True when there is nothing to apply (withheld changes may remain)."""
        return not self.changes.operations

    @property
    def matches_model(self) -> bool:
        """True when the shape is exactly the model: nothing to apply, nothing withheld."""
        return self.changes.matches_model

    def round_trip(self, schema: str, shape: Shape, fingerprint: str) -> RoundTrip:
        """The trip that applies this change set to ``schema``, whose own shape is ``shape``.

        The version (``fingerprint``, the model's) is recorded only when nothing is withheld.
        """
        return RoundTrip(
            schema,
            shape,
            self.changes,
            version=None if self.changes.withheld else fingerprint,
        )


def group_by_shape(shapes: dict[str, Shape], names: Iterable[str]) -> dict[str, list[str]]:
    """Tenant names by fingerprint, in the order given; names without a shape are left out."""
    groups: dict[str, list[str]] = {}
    for name in names:
        shape = shapes.get(name)
        if shape is not None:
            groups.setdefault(shape.fingerprint, []).append(name)
    return groups


class ShapeChanged(Exception):
    """The representative's structure is not the one its shape was read with."""


def plan_shape(
    engine: Engine,
    representative: str,
    model: Model,
    options: SyncOptions,
    expected: Shape | None = None,
) -> ChangeSet:
    """Diff ``representative`` against the model, read-only, and render the SQL.

    The representative's shape is read in the same snapshot as the comparison, so the
    change set is known to be that shape's: ``expected`` (the shape the catalog pass saw),
    when given, must be it, or ShapeChanged is raised.  A shape recorded as matching
    the model is not compared.  Raises whatever the comparison raises; the caller then
    syncs the shape's tenants one by one, so each reports its own error.
    """
    with engine.connect() as conn, unprepared(conn):
        # One snapshot for the shape and every reflection query.
        conn.execution_options(isolation_level="REPEATABLE READ")
        transaction = conn.begin()
        try:
            shape = _read_shape(conn, representative, options)
            if expected is not None and shape.fingerprint != expected.fingerprint:
                raise ShapeChanged(f"{representative} changed since the catalog pass")
            if known_match(shape, model, {shape.version_comment}):
                return ChangeSet.matching(shape, representative)
            set_up_session(conn, representative, options.lock_timeout, options.statement_timeout)
            check_schema_access(conn, representative, write=False)
            plan = plan_tenant(conn, representative, model, options)
            sql = render_plan(conn, plan) if plan.operations else []
        finally:
            transaction.rollback()
    return ChangeSet(shape, representative, plan.changes(sql))


def _read_shape(conn: Connection, schema: str, options: SyncOptions) -> Shape:
    shapes = read_shapes(conn, [schema], ignored_tables(options), options.version_table)
    if schema not in shapes:
        raise ShapeChanged(f"{schema} no longer exists")
    return shapes[schema]


def match_key(shape: Shape, model: Model) -> str:
    """The key under which ``shape`` is recorded as matching ``model``."""
    versions = library_versions()
    parts = [
        _MATCH_FORMAT,
        shape.fingerprint,
        model.fingerprint,
        versions["tenant_sync"],
        versions["alembic"],
        versions["sqlalchemy"],
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def known_match(shape: Shape, model: Model, recorded: Collection[str]) -> bool:
    """True when ``recorded`` (the version-table comments seen) says ``shape`` matches ``model``."""
    return MATCH_COMMENT_PREFIX + match_key(shape, model) in recorded


def record_match(engine: Engine, changes: ChangeSet, model: Model, options: SyncOptions) -> None:
    """Record on the representative's version table that its shape matches the model.

    Best effort: the record only saves later runs a comparison, so a failure (the role
    does not own the table, a lock is held) is logged and ignored.
    """
    if not changes.shape.has_version_table:
        return
    table = f"{quote(changes.representative)}.{quote(options.version_table)}"
    comment = literal(MATCH_COMMENT_PREFIX + match_key(changes.shape, model))
    try:
        with engine.connect() as conn, unprepared(conn), conn.begin():
            lock_tenant(
                conn, changes.representative, options.lock_timeout, options.statement_timeout
            )
            execute_batch(conn, [f"COMMENT ON TABLE {table} IS {comment}"])
    except sa.exc.DBAPIError as exc:
        log.debug("could not record that %s matches the model: %s", changes.representative, exc)
