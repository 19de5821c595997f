"""Plan once per distinct tenant shape instead of once per tenant.

Tenants with the same structure fingerprint (see :mod:`tenant_sync.fingerprint`) need
the same operations, so Alembic autogenerate runs on one representative of each shape,
read-only, and its plan (operations in words, the rendered SQL, withheld changes) is
shared by every tenant of that shape.  Each tenant still applies it in its own
transaction, after re-checking its fingerprint under its own lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from .apply import render_plan
from .engine import unprepared
from .fingerprint import Shape
from .locking import check_schema_access, set_up_session
from .model import Model
from .options import SyncOptions
from .plan import plan_tenant

__all__ = ["ShapePlan", "group_by_shape", "plan_shape"]


@dataclass(frozen=True)
class ShapePlan:
    """What every tenant of one shape needs, planned on one representative tenant."""

    shape: Shape
    representative: str
    operations: tuple[str, ...]
    sql: tuple[str, ...]
    withheld: tuple[str, ...]
    tenants: tuple[str, ...] = field(default=(), compare=False)

    @property
    def up_to_date(self) -> bool:
        """True when there is nothing to apply (withheld changes may remain)."""
        return not self.operations

    @property
    def matches_model(self) -> bool:
        """True when the shape is exactly the model: nothing to apply, nothing withheld."""
        return not self.operations and not self.withheld


def group_by_shape(shapes: dict[str, Shape], names: Iterable[str]) -> dict[str, list[str]]:
    """Tenant names by fingerprint, in the order given; names without a shape are left out."""
    groups: dict[str, list[str]] = {}
    for name in names:
        shape = shapes.get(name)
        if shape is not None:
            groups.setdefault(shape.fingerprint, []).append(name)
    return groups


def plan_shape(
    engine: Engine,
    representative: str,
    shape: Shape,
    tenants: list[str],
    model: Model,
    options: SyncOptions,
) -> ShapePlan:
    """Diff ``representative`` against the model, read-only, and render the SQL.

    Raises whatever the comparison raises; the caller then syncs the shape's tenants
    one by one, so each reports its own error.
    """
    with engine.connect() as conn, unprepared(conn):
        transaction = conn.begin()
        try:
            set_up_session(conn, representative, options.lock_timeout, options.statement_timeout)
            check_schema_access(conn, representative, write=False)
            plan = plan_tenant(conn, representative, model, options)
            sql = render_plan(conn, plan) if plan.operations else []
        finally:
            transaction.rollback()
    return ShapePlan(
        shape=shape,
        representative=representative,
        operations=tuple(plan.descriptions),
        sql=tuple(sql),
        withheld=tuple(plan.withheld_descriptions),
        tenants=tuple(tenants),
    )
