"""Compare one tenant per distinct shape with the model: its :class:`ChangeSet`.

Tenants with the same structure fingerprint (see :mod:`tenant_sync.fastpath.catalog`)
need the same operations, so Alembic autogenerate runs on one representative of each
shape, read-only, and its change set (operations in words, the rendered SQL, withheld
changes) is shared by every tenant of that shape.  Each tenant still applies it in its own
transaction, after re-checking under its own lock that it is as the pass saw it.

Whether a shape equals the model is asked of PostgreSQL itself (see
:mod:`tenant_sync.yardstick`): the representative's state is compared with the model's,
and Alembic runs only for a shape that differs.  Nothing about a tenant is trusted
from an earlier run: its structure is read from the catalog on every run, and a
tenant that drifts has another fingerprint, which is compared afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from ..apply import render_plan
from ..changes import Changes
from ..engine import unprepared
from ..model import Model
from ..options import SyncOptions
from ..plan import ignored_tables, plan_tenant
from ..selection import not_tenants_among
from ..session import check_schema_access, set_up_session
from .catalog import Shape, read_shapes
from .round_trip import RoundTrip

__all__ = ["ChangeSet", "NotATenant", "ShapeChanged", "group_by_shape", "plan_shape"]


@dataclass(frozen=True)
class ChangeSet:
    """What every tenant of one shape needs, planned on one representative tenant."""

    shape: Shape
    representative: str
    changes: Changes

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

        The version (``fingerprint``, the model's) is recorded only when the tenant then
        equals the model.
        """
        return RoundTrip(
            schema,
            shape,
            self.changes,
            version=fingerprint if self.changes.reaches_model else None,
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


class NotATenant(Exception):
    """The representative looks like no tenant (see :mod:`tenant_sync.selection`)."""


def plan_shape(
    engine: Engine,
    representative: str,
    model: Model,
    options: SyncOptions,
    expected: Shape | None = None,
    *,
    vet: bool = False,
    overlap: bool = False,
) -> ChangeSet:
    """Diff ``representative`` against the model, read-only, and render the SQL.

    The representative's shape is read in the same snapshot as the comparison, so the
    change set is known to be that shape's: ``expected`` (the shape the catalog pass saw),
    when given, must be it, or ShapeChanged is raised.  With ``vet``, NotATenant is raised,
    before any comparison, when the representative looks like no tenant.  ``overlap``:
    the model's state is being built beside it (see :func:`~tenant_sync.plan.plan_tenant`).
    Raises whatever the comparison raises; the caller then syncs the shape's tenants one
    by one, so each reports its own error.
    """
    with engine.connect() as conn, unprepared(conn):
        # One snapshot for the shape and every reflection query.
        conn.execution_options(isolation_level="REPEATABLE READ")
        transaction = conn.begin()
        try:
            shape = _read_shape(conn, representative, options)
            if expected is not None and shape.fingerprint != expected.fingerprint:
                raise ShapeChanged(f"{representative} changed since the catalog pass")
            if vet and not_tenants_among(
                {representative: shape.relations}, model.tenant_table_names
            ):
                raise NotATenant(f"{representative} looks like no tenant")
            set_up_session(conn, representative, options.lock_timeout, options.statement_timeout)
            check_schema_access(conn, representative, write=False)
            plan = plan_tenant(
                conn, representative, model, options, count_conflicts=False, overlap=overlap
            )
            sql = render_plan(conn, plan) if plan.operations else []
        finally:
            transaction.rollback()
    return ChangeSet(shape, representative, plan.changes(sql))


def _read_shape(conn: Connection, schema: str, options: SyncOptions) -> Shape:
    shapes = read_shapes(conn, [schema], ignored_tables(options), options.version_table)
    if schema not in shapes:
        raise ShapeChanged(f"{schema} no longer exists")
    return shapes[schema]
