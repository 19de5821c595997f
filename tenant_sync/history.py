"""Each tenant's history: one entry per change, written in the transaction that makes it.

The history lives in the tenant, in a table of its own, ``tenant_sync_history``, made by
the first change that records one.  In the tenant, because that is where the schema it
describes lives: it is dropped with the schema, dumped and restored with it
(``pg_dump -n``), and the entry commits or rolls back with the change, so history and
schema cannot disagree.  Not in the version table, whose one row Alembic reads as the
current revision.  Like the version table it is bookkeeping: never compared with the
model, never a reason to call a schema a tenant.

An entry says when the change ran (the transaction's start), in which run (the run id of
the report's header, :attr:`~tenant_sync.report.RunInfo.run_id`), to which model
(fingerprint), which operations in words, the SQL (its text and SHA-256 digest), how
long the transaction had taken when it was written, and the tool versions.  A tenant
keeps its newest :data:`HISTORY_KEPT` entries: each new entry drops the older ones, in
the same transaction, so the table stays small however often the model changes.

Only changes are recorded: a run that finds a tenant unchanged writes nothing there.
Each data step a tenant has done (see :mod:`tenant_sync.steps`) has an entry of its own,
with the step's name in ``step``, written in the transaction that finished the step.
Those entries are how a step is never run twice, so they are never dropped: only
entries of schema changes count towards :data:`HISTORY_KEPT`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .changes import Changes
from .options import HISTORY_TABLE
from .sql import literal, quote, text_array
from .versions import library_versions

__all__ = [
    "HISTORY_KEPT",
    "HISTORY_TABLE",
    "HistoryEntry",
    "done_steps",
    "history_statements",
    "read_history",
    "step_statements",
]

#: How many entries each tenant keeps, newest first.
HISTORY_KEPT = 100


@dataclass(frozen=True)
class HistoryEntry:
    """One change of one tenant, as recorded in its transaction.

    :ivar at: when the change's transaction started (ISO 8601, UTC).
    :ivar run_id: the run that made it (its report's ``run.run_id``); a signup's own id.
    :ivar model_fingerprint: the model the tenant was synced to.
    :ivar operations: each change in words, as the report words it.
    :ivar sql: the SQL that ran, statement by statement.
    :ivar sql_digest: the SHA-256 of the SQL, statements joined by ``;\\n``.
    :ivar duration_s: how long the transaction had run when the entry was written.
    :ivar versions: tenant_sync's, Alembic's, SQLAlchemy's and psycopg's versions.
    :ivar step: the data step the entry records as done, or None for a schema change.
    """

    at: str
    run_id: str
    model_fingerprint: str
    operations: tuple[str, ...]
    sql: tuple[str, ...]
    sql_digest: str
    duration_s: float
    versions: dict[str, str]
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready data."""
        return {
            "at": self.at,
            "run_id": self.run_id,
            "model_fingerprint": self.model_fingerprint,
            "operations": list(self.operations),
            "sql": list(self.sql),
            "sql_digest": self.sql_digest,
            "duration_s": self.duration_s,
            "versions": dict(self.versions),
            "step": self.step,
        }


def history_statements(
    schema: str, run_id: str, model_fingerprint: str, changes: Changes, *, create: bool = True
) -> list[str]:
    """SQL that records ``changes`` in the tenant's history, made if it has none yet
    (unless ``create`` is false: the caller knows it has one), and drops the change
    entries beyond :data:`HISTORY_KEPT`; values written in as literals, so the
    statements can join the tenant's round trip."""
    table = _table(schema)
    return [
        *([_CREATE.format(table=table)] if create else []),
        _insert(table, run_id, model_fingerprint, changes.operations, changes.sql, None),
        f"DELETE FROM {table} WHERE step IS NULL AND at < (SELECT at FROM {table}"
        f" WHERE step IS NULL ORDER BY at DESC OFFSET {HISTORY_KEPT - 1} LIMIT 1)",
    ]


def step_statements(
    schema: str, run_id: str, model_fingerprint: str, step: str, words: str
) -> list[str]:
    """SQL that records the data step ``step`` as done in the tenant's history, ``words``
    saying how (``"ran in 3 batches"``, ``"not run: recorded at signup"``)."""
    table = _table(schema)
    return [
        _CREATE.format(table=table),
        _insert(table, run_id, model_fingerprint, (f"step {step}: {words}",), (), step),
    ]


def done_steps(conn: Connection, schema: str) -> set[str]:
    """The names of the data steps the tenant's history records as done."""
    if not _has_history(conn, schema):
        return set()
    rows = conn.execute(
        sa.text(f"SELECT step FROM {_table(schema)} WHERE step IS NOT NULL")
    ).scalars()
    return set(rows)


_CREATE = (
    "CREATE TABLE IF NOT EXISTS {table} (at timestamptz NOT NULL DEFAULT now(),"
    " run_id text NOT NULL, model_fingerprint text NOT NULL, operations text[] NOT NULL,"
    " sql text[] NOT NULL, sql_digest text NOT NULL, duration interval NOT NULL,"
    " versions jsonb NOT NULL, step text)"
)


def _table(schema: str) -> str:
    return f"{quote(schema)}.{quote(HISTORY_TABLE)}"


def _insert(
    table: str,
    run_id: str,
    model_fingerprint: str,
    operations: Sequence[str],
    sql: Sequence[str],
    step: str | None,
) -> str:
    values = ", ".join(
        [
            literal(run_id),
            literal(model_fingerprint),
            text_array(operations),
            text_array(sql),
            literal(hashlib.sha256(";\n".join(sql).encode()).hexdigest()),
            "pg_catalog.clock_timestamp() - pg_catalog.now()",
            f"CAST({literal(_versions_json())} AS jsonb)",
            "NULL" if step is None else literal(step),
        ]
    )
    return (
        f"INSERT INTO {table} (run_id, model_fingerprint, operations, sql, sql_digest,"
        f" duration, versions, step) VALUES ({values})"
    )


def _has_history(conn: Connection, schema: str) -> bool:
    return bool(
        conn.execute(
            sa.text("SELECT pg_catalog.to_regclass(:name) IS NOT NULL"), {"name": _table(schema)}
        ).scalar_one()
    )


def read_history(conn: Connection, schema: str, limit: int | None = None) -> list[HistoryEntry]:
    """The tenant's history, newest first (at most ``limit`` entries); empty if it has none."""
    if not _has_history(conn, schema):
        return []
    rows = conn.execute(
        sa.text(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
            " run_id, model_fingerprint, operations, sql, sql_digest,"
            " extract(epoch FROM duration)::float8, versions, step"
            f" FROM {_table(schema)} ORDER BY at DESC LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [
        HistoryEntry(
            at, run_id, fingerprint, tuple(ops), tuple(sql), digest, seconds, versions, step
        )
        for at, run_id, fingerprint, ops, sql, digest, seconds, versions, step in rows
    ]


@functools.cache
def _versions_json() -> str:
    return json.dumps(library_versions(), sort_keys=True)
