"""Signup without reflection: build a new tenant from the plan of an empty schema.

Every new tenant schema starts empty, so every signup needs the same operations.  The
first signup of a :class:`~tenant_sync.TenantSync` compares its new, empty schema with
the model (Alembic autogenerate, whose reflection scans the whole catalog: seconds at
thousands of tenants) and keeps the rendered SQL in a :class:`SignupCache`.  Later
signups run that SQL in one :class:`~tenant_sync.fastpath.round_trip.RoundTrip`:
``BEGIN``, the tenant's lock, ``CREATE SCHEMA``, a recheck that the schema is empty,
the SQL, the version row, ``COMMIT``.

A schema that already exists is used only if it is empty (the application may create
schemas itself); anything else, and any failure of the kept SQL, falls back to the
full comparison, which names the precise problem (and, when it creates the schema,
plans afresh what is kept).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..changes import Changes
from ..steps import Step
from .catalog import EMPTY_SCHEMA
from .round_trip import RoundTrip

__all__ = ["SignupCache"]


class SignupCache:
    """The operations and SQL that build an empty schema into the model; thread-safe.

    Empty until the first signup that creates a schema and compares it, and renewed by
    every such comparison; kept for the life of its TenantSync, whose model and options
    it was planned for.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: Changes | None = None

    def remember(self, changes: Changes) -> None:
        """Keep the plan found for an empty schema (its operations in words, its SQL)."""
        with self._lock:
            self._kept = changes

    def round_trip(
        self, schema: str, fingerprint: str, steps: Sequence[Step] = ()
    ) -> RoundTrip | None:
        """The trip that creates and builds ``schema`` from the kept plan, if one is kept,
        and records ``steps`` as done; None if one of them runs at signup (the trip runs
        SQL only: such a signup is built by a comparison, its steps in its transaction)."""
        with self._lock:
            kept = self._kept
        if kept is None or any(step.on_signup == "run" for step in steps):
            return None
        skipped = tuple(step.name for step in steps)
        return RoundTrip(
            schema, EMPTY_SCHEMA, kept, fingerprint, creates_schema=True, skipped_steps=skipped
        )
