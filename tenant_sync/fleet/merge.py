"""Reports of the shares of one run, merged into one (``tenant-sync report merge``).

A run split with ``--shard I/N`` over N machines leaves N reports.  Merged, they read as
the report of one run: every tenant once, every database once, counts over all.

A tenant in more than one report (shares that overlapped, or a share run twice) keeps
its most telling result: a change made (``migrated``, ``partial``) over a match found
(``unchanged``), over ``planned``, over ``failed`` (another share synced it after all),
over ``skipped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..errors import ConfigurationError
from ..report import STATUSES, SyncReport, TenantResult
from ..run_header import DatabaseRun

__all__ = ["merge_reports"]

#: Which of two results of one tenant a merge keeps: the lower rank.
_RANK = {"migrated": 0, "partial": 1, "unchanged": 2, "planned": 3, "failed": 4, "skipped": 5}


def merge_reports(reports: Sequence[SyncReport]) -> SyncReport:
    """One report of the tenants of every report in ``reports`` (see above).

    The header is the first report's, its options' ``shard`` dropped; the run spans
    the earliest start to the latest finish.

    :raises ConfigurationError: no reports, or a dry run merged with a real one.
    """
    if not reports:
        raise ConfigurationError("nothing to merge: give at least one report")
    if len({report.dry_run for report in reports}) > 1:
        raise ConfigurationError("cannot merge the report of a dry run with that of a sync")
    kept: dict[tuple[str | None, str], TenantResult] = {}
    for report in reports:
        for result in report.results:
            key = (result.database, result.schema)
            other = kept.get(key)
            if other is None or _RANK[result.status] < _RANK[other.status]:
                kept[key] = result
    first = reports[0]
    merged = SyncReport(
        results=sorted(kept.values(), key=lambda result: (result.database or "", result.schema)),
        dry_run=first.dry_run,
        started_at=min(report.started_at for report in reports),
        finished_at=max((r.finished_at for r in reports if r.finished_at), default=None),
        duration_s=max(report.duration_s for report in reports),
        cancelled=any(report.cancelled for report in reports),
        note=_note(reports),
    )
    if first.run is not None:
        options = {k: v for k, v in first.run.options.items() if k != "shard"}
        merged.run = replace(first.run, options={**options, "merged_reports": len(reports)})
    merged.databases = _databases(reports, merged.results)
    return merged


def _databases(reports: Sequence[SyncReport], results: list[TenantResult]) -> list[DatabaseRun]:
    """Each database once: its counts over the merged results, an error any share met."""
    seen: dict[str, DatabaseRun] = {}
    for report in reports:
        for database in report.databases:
            known = seen.get(database.name)
            seen[database.name] = replace(
                known or database,
                error=(known.error if known and known.error else None) or database.error,
                duration_s=max(database.duration_s, known.duration_s if known else 0.0),
            )
    for name, database in seen.items():
        counts = {status: 0 for status in STATUSES}
        for result in results:
            if result.database == name:
                counts[result.status] += 1
        seen[name] = replace(database, counts={s: n for s, n in counts.items() if n})
    return list(seen.values())


def _note(reports: Sequence[SyncReport]) -> str | None:
    notes = sorted({report.note for report in reports if report.note})
    return "; ".join(notes) or None
