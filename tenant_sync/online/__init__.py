"""The online path: lock-safe DDL for a tenant's big tables.

On a big table, ``CREATE INDEX`` blocks writes for as long as the build takes, and
adding a FOREIGN KEY, a CHECK or a NOT NULL scans the table under a lock that blocks
them too (``lock_timeout`` bounds only the wait *for* a lock).  So a tenant change that
touches a table of at least ``online_min_rows`` rows (as ``pg_class`` estimates them,
see ``big_tables.sql``) runs in two phases (see :mod:`tenant_sync.online.split`): the
usual transaction, with what is quick; then each slow statement alone, in a way that
lets writes go on (see :mod:`tenant_sync.online.phase2`).  ``online="always"`` takes
this path for every table, ``"never"`` for none.

Resumable from the catalog, with no bookkeeping of its own: an index left invalid by a
killed build shows as ``INVALID`` in the tenant's state, a constraint never validated
as ``NOT VALID`` (see :mod:`tenant_sync.yardstick`), so a rerun plans what is left:
the invalid index dropped and built again, the constraint validated.  A tenant whose
phase 2 did not finish is ``partial``, never ``migrated``; a rerun finishes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..model import Model
from ..options import OnlineMode, SyncOptions
from ..sql import read_query
from .phase2 import StepOutcome, run_phase2
from .split import OnlineStep, split_online

__all__ = [
    "OnlineMode",
    "OnlineStep",
    "StepOutcome",
    "big_tables",
    "online_rows",
    "run_phase2",
    "split_online",
    "tenant_types",
]

_BIG_TABLES_SQL = read_query("tenant_sync.online", "big_tables.sql")


def online_rows(options: SyncOptions) -> float | None:
    """The fewest rows of a table that takes the online path; None when none does."""
    if options.online == "never":
        return None
    return 0 if options.online == "always" else options.online_min_rows


def big_tables(
    conn: Connection, schemas: Sequence[str], options: SyncOptions
) -> dict[str, frozenset[str]]:
    """The tables of each of ``schemas`` that take the online path, by schema (one query)."""
    min_rows = online_rows(options)
    if min_rows is None or not schemas:
        return {}
    rows = conn.execute(sa.text(_BIG_TABLES_SQL), {"schemas": list(schemas), "min_rows": min_rows})
    found: dict[str, set[str]] = defaultdict(set)
    for schema, table in rows:
        found[schema].add(table)
    return {schema: frozenset(tables) for schema, tables in found.items()}


def tenant_types(model: Model) -> frozenset[str]:
    """The names of the enum types each tenant has of its own."""
    return frozenset(
        column.type.name
        for table in model.tenant_tables
        for column in table.columns
        if isinstance(column.type, sa.Enum) and column.type.name and column.type.schema is None
    )
