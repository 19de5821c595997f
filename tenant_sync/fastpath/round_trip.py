"""One round trip for one tenant: lock, recheck, SQL, version, in one transaction.

The fast path's write: a tenant whose changes are known in advance (its shape's change
set, or the kept plan of an empty schema at signup) is changed in a single round trip,
``BEGIN`` to ``COMMIT``, without reflecting the catalog.  :class:`RoundTrip` says what
the trip runs; :func:`run_round_trip` runs it and decides, from the error's SQLSTATE,
whether the tenant is retried, compared alone, or built after all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..batch import run_transaction
from ..changes import Changes, with_schema_created
from ..failures import DUPLICATE_SCHEMA, SHAPE_CHANGED, failure_message, sqlstate, transient_reason
from ..history import history_statements, step_statements
from ..options import SyncOptions
from ..plan import ignored_tables
from ..session import lock_statement
from ..sql import quote
from ..steps import SKIPPED_AT_SIGNUP
from ..version_table import version_statements
from .catalog import Shape, recheck_statement
from .memo import memo_statement, next_fingerprint

__all__ = ["RoundTrip", "run_round_trip"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundTrip:
    """What one round trip runs for one tenant.

    ``BEGIN``; the tenant's set-up and advisory lock; ``CREATE SCHEMA`` if
    ``creates_schema``; a recheck that the tenant still has the shape ``expected``
    (:data:`~tenant_sync.fastpath.catalog.EMPTY_SCHEMA` for a new one); ``sql``; the
    ``version`` (the model's fingerprint, None while changes are withheld); with a
    version, the tenant's memo (see :mod:`~tenant_sync.fastpath.memo`); ``COMMIT``.
    """

    schema: str
    expected: Shape
    changes: Changes
    version: str | None
    creates_schema: bool = False
    #: Data steps a signup records as done without running them (``on_signup="skip"``).
    skipped_steps: tuple[str, ...] = ()

    @property
    def changes_run(self) -> Changes:
        """The tenant's changes, the schema's creation included (not the lock nor the recheck)."""
        if not self.creates_schema:
            return self.changes
        return with_schema_created(self.schema, self.changes)

    def statements(self, options: SyncOptions) -> list[str]:
        """Every statement between ``BEGIN`` and ``COMMIT``, values written in as literals."""
        statements = [
            lock_statement(self.schema, options.lock_timeout, options.statement_timeout),
            *self._create_schema(),
            recheck_statement(self.schema, self.expected, ignored_tables(options)),
            *self.changes.sql,
        ]
        if self.version is not None:
            statements += version_statements(
                self.schema,
                options.version_table,
                self.version,
                create=not self.expected.has_version_table,
            )
        return statements

    def memo(self, options: SyncOptions) -> list[str]:
        """The statement that ends the transaction by recording the tenant's memo (see
        :mod:`~tenant_sync.fastpath.memo`), when the trip records a version."""
        if self.version is None:
            return []
        fingerprint = next_fingerprint(self.expected.fingerprint, self.changes.sql)
        ignored = ignored_tables(options)
        return [memo_statement(self.schema, options.version_table, fingerprint, ignored)]

    def _create_schema(self) -> list[str]:
        return [f"CREATE SCHEMA {quote(self.schema)}"] if self.creates_schema else []


def run_round_trip(
    engine: Engine, trip: RoundTrip, options: SyncOptions, run_id: str, model_fingerprint: str
) -> RoundTrip | None:
    """Run ``trip`` in one transaction, its history entry (``run_id``, the model's
    fingerprint) included; return the trip as it ran, or None.

    None means the tenant must be compared alone: it is not as the trip expects (it
    changed since the catalog pass, or a new schema is not empty), or the trip's SQL
    failed in it (the comparison then names the operation that fails).  A schema that
    someone else created meanwhile is built if it is still empty: the trip returned
    then has no ``CREATE SCHEMA``.  Transient errors are raised, to be retried.
    """
    try:
        ran = trip.changes_run
        history = []
        if ran.sql:
            # The recheck holds the history table to be there if the pass saw it.
            create = not trip.expected.has_history_table
            history = history_statements(trip.schema, run_id, model_fingerprint, ran, create=create)
        for step in trip.skipped_steps:
            words = SKIPPED_AT_SIGNUP
            history += step_statements(trip.schema, run_id, model_fingerprint, step, words)
        run_transaction(engine, trip.statements(options) + history + trip.memo(options))
    except sa.exc.DBAPIError as exc:
        if transient_reason(exc):
            raise
        state = sqlstate(exc)
        if state == DUPLICATE_SCHEMA and trip.creates_schema:
            # The application, or a concurrent signup that has committed by now.
            rerun = replace(trip, creates_schema=False)
            return run_round_trip(engine, rerun, options, run_id, model_fingerprint)
        if state == SHAPE_CHANGED:
            log.debug("tenant %s: not as the catalog showed it; comparing it alone", trip.schema)
        else:
            log.info(
                "tenant %s: its round trip failed (%s); comparing it alone",
                trip.schema,
                failure_message(exc),
            )
        return None
    return trip
