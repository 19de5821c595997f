"""A tenant's history (:func:`~tenant_sync.history.read_history`) as plain text, for a terminal.

::

    tenant_acme: 2 changes recorded, newest first
    2026-12-03T07:55:01.123456+00:00  run 3f2a9c0d1e4b  model 31c6b68481af  0.012s
      add column invoices.due_date DATE
      sql sha256 9b1c...  (3 statements)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..history import HistoryEntry
from .summary import format_duration, format_sql, printable

__all__ = ["format_history"]


def format_history(schema: str, entries: Sequence[HistoryEntry], with_sql: bool = False) -> str:
    """Each entry: when, which run and model, how long; its operations; with ``with_sql``
    its SQL, else the SQL's digest."""
    if not entries:
        return f"{printable(schema)}: no change recorded\n"
    steps = sum(entry.step is not None for entry in entries)
    count = _count(len(entries) - steps, "change")
    if steps:
        count = f"{count} and {_count(steps, 'data step')}"
    lines = [f"{printable(schema)}: {count} recorded, newest first"]
    for entry in entries:
        lines.append(
            f"{entry.at}  run {entry.run_id[:12]}  model {entry.model_fingerprint[:12]}"
            f"  {format_duration(entry.duration_s)}"
        )
        lines += [f"  {printable(operation)}" for operation in entry.operations]
        if entry.step is not None:
            continue  # a data step's entry: no SQL of tenant_sync's
        statements = f"{len(entry.sql)} statement" + ("" if len(entry.sql) == 1 else "s")
        lines.append(f"  sql sha256 {entry.sql_digest[:16]}  ({statements})")
        if with_sql:
            lines += ["    " + line for line in format_sql(entry.sql).splitlines()]
    return "\n".join(lines) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
