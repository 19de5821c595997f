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
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .changes import Changes
from .options import HISTORY_TABLE
from .sql import literal, quote, text_array
from .versions import library_versions

__all__ = ["HISTORY_KEPT", "HISTORY_TABLE", "HistoryEntry", "history_statements", "read_history"]

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
    """

    at: str
    run_id: str
    model_fingerprint: str
    operations: tuple[str, ...]
    sql: tuple[str, ...]
    sql_digest: str
    duration_s: float
    versions: dict[str, str]

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
        }


def history_statements(
    schema: str, run_id: str, model_fingerprint: str, changes: Changes
) -> list[str]:
    """SQL that records ``changes`` in the tenant's history, made if it has none yet, and
    drops the entries beyond :data:`HISTORY_KEPT`; values written in as literals, so the
    statements can join the tenant's round trip."""
    table = f"{quote(schema)}.{quote(HISTORY_TABLE)}"
    sql = ";\n".join(changes.sql)
    values = ", ".join(
        [
            literal(run_id),
            literal(model_fingerprint),
            text_array(changes.operations),
            text_array(changes.sql),
            literal(hashlib.sha256(sql.encode()).hexdigest()),
            "pg_catalog.clock_timestamp() - pg_catalog.now()",
            f"CAST({literal(_versions_json())} AS jsonb)",
        ]
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (at timestamptz NOT NULL DEFAULT now(),"
        " run_id text NOT NULL, model_fingerprint text NOT NULL, operations text[] NOT NULL,"
        " sql text[] NOT NULL, sql_digest text NOT NULL, duration interval NOT NULL,"
        " versions jsonb NOT NULL)",
        f"INSERT INTO {table} (run_id, model_fingerprint, operations, sql, sql_digest,"
        f" duration, versions) VALUES ({values})",
        f"DELETE FROM {table} WHERE at < (SELECT at FROM {table} ORDER BY at DESC"
        f" OFFSET {HISTORY_KEPT - 1} LIMIT 1)",
    ]


def read_history(conn: Connection, schema: str, limit: int | None = None) -> list[HistoryEntry]:
    """The tenant's history, newest first (at most ``limit`` entries); empty if it has none."""
    exists = conn.execute(
        sa.text("SELECT pg_catalog.to_regclass(:name) IS NOT NULL"),
        {"name": f"{quote(schema)}.{quote(HISTORY_TABLE)}"},
    ).scalar_one()
    if not exists:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
            " run_id, model_fingerprint, operations, sql, sql_digest,"
            " extract(epoch FROM duration)::float8, versions"
            f" FROM {quote(schema)}.{quote(HISTORY_TABLE)} ORDER BY at DESC LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [
        HistoryEntry(at, run_id, fingerprint, tuple(ops), tuple(sql), digest, seconds, versions)
        for at, run_id, fingerprint, ops, sql, digest, seconds, versions in rows
    ]


@functools.cache
def _versions_json() -> str:
    return json.dumps(library_versions(), sort_keys=True)
