"""The results of a run: one :class:`TenantResult` per tenant, gathered in a :class:`SyncReport`.

A report's header, :class:`RunInfo`, says what the run was run against and how.

:class:`Drift` is what :meth:`~tenant_sync.TenantSync.drift` returns: how one group of
tenants with the same structure differs from the model.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .changes import Changes
from .errors import ReportFormatError
from .files import write_text_atomically
from .run_header import DatabaseRun, RunInfo, WaveOutcome
from .versions import __version__

__all__ = [
    "REPORT_FORMAT_VERSION",
    "STATUSES",
    "DatabaseRun",
    "Drift",
    "RunInfo",
    "Status",
    "SyncReport",
    "TenantResult",
    "WaveOutcome",
]

#: Bumped whenever the JSON form of a report changes incompatibly.  Keys added since
#: version 1 came out are optional, so older reports still read: ``run`` (the header),
#: ``waves`` (a staged run's waves), ``databases`` (a fleet's), a result's ``database``.
REPORT_FORMAT_VERSION = 1

Status = Literal["migrated", "partial", "unchanged", "planned", "failed", "skipped"]

#: Every status a tenant can end in, in the order summaries list them.
STATUSES: tuple[Status, ...] = ("migrated", "partial", "unchanged", "planned", "failed", "skipped")

# The fields of a TenantResult that hold lists of strings, checked when a report is read.
_LIST_FIELDS = (
    "operations",
    "sql",
    "withheld",
    "classes",
    "withheld_classes",
    "differences",
    "accepted",
    "steps",
    "online",
)


@dataclass(frozen=True)
class TenantResult:
    """What happened to one tenant.

    :ivar schema: the tenant schema.
    :ivar status: ``migrated`` (changes applied), ``partial`` (the online path's
        transaction committed, some of its later steps did not run: see ``online``; a
        rerun finishes them), ``unchanged`` (already matched the
        model), ``planned`` (dry run with changes), ``failed`` (rolled back, see
        ``error``) or ``skipped`` (not attempted, e.g. after cancellation).
    :ivar operations: each change in words, e.g. ``add column projects.description TEXT``.
    :ivar sql: the SQL statements run or, in a dry run, that would run.
    :ivar withheld: changes not applied because their class is not allowed, in words.
    :ivar error: why the tenant failed or was skipped, in one line; else None.
    :ivar duration_s: wall time spent on the tenant, all attempts included.
    :ivar attempts: how many times the tenant's transaction was tried.
    :ivar classes: the class of each operation (``safe``, ``data_dependent``,
        ``rewrite``, ``destructive``), in the same order.
    :ivar withheld_classes: the class of each withheld change, in the same order.
    :ivar differences: what still differs from the model after this run, in words; empty
        when the tenant equals the model (accepted changes aside).
    :ivar accepted: withheld changes the user accepted (``accept=``): not warned about.
    :ivar steps: the data steps run in the tenant (see :mod:`tenant_sync.steps`); in a
        dry run, those that would run.
    :ivar online: the online path's steps after the tenant's transaction (see
        :mod:`tenant_sync.online`), each with its state: ``create index ix on t (a)
        concurrently: done``; ``planned`` in a dry run.
    :ivar database: in a fleet's run, the name of the tenant's database; else None.
    """

    schema: str
    status: Status
    operations: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    attempts: int = 1
    classes: list[str] = field(default_factory=list)
    withheld_classes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    online: list[str] = field(default_factory=list)
    database: str | None = None

    @classmethod
    def of(cls, schema: str, status: Status, changes: Changes, **fields: Any) -> TenantResult:
        """A result that lists ``changes``: what ran (or would), what is withheld, what differs."""
        return cls(
            schema,
            status,
            operations=list(changes.operations),
            sql=list(changes.sql),
            withheld=list(changes.withheld),
            classes=list(changes.classes),
            withheld_classes=list(changes.withheld_classes),
            differences=list(changes.differences),
            accepted=list(changes.accepted),
            **fields,
        )

    @property
    def name(self) -> str:
        """How summaries name the tenant: ``database/schema`` in a fleet, else the schema."""
        return self.schema if self.database is None else f"{self.database}/{self.schema}"

    @property
    def in_sync(self) -> bool:
        """True when nothing but accepted changes sets the tenant apart from the model."""
        return self.status in ("migrated", "unchanged") and not self.differences

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantResult:
        """Rebuild a result from :meth:`to_dict` output."""
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Drift:
    """How tenants of one structure differ from the model, and what a sync would do.

    :ivar tenants: the tenants of that structure.
    :ivar operations: what a sync would run in each, in words.
    :ivar withheld: changes a sync would withhold (their class not allowed), in words.
    :ivar sql: the SQL a sync would run in each.
    :ivar classes: the class of each operation.
    :ivar differences: what would still differ from the model after a sync.
    :ivar accepted: withheld changes the user accepted.
    """

    tenants: tuple[str, ...]
    operations: tuple[str, ...]
    withheld: tuple[str, ...]
    sql: tuple[str, ...]
    classes: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()

    @classmethod
    def of(cls, tenants: tuple[str, ...], changes: Changes) -> Drift:
        """The drift of ``tenants``, which all need ``changes``."""
        return cls(
            tenants,
            changes.operations,
            changes.withheld,
            changes.sql,
            changes.classes,
            changes.differences,
            changes.accepted,
        )


@dataclass
class SyncReport:
    """The outcome of a run over many tenants.

    ``ok`` is true when no tenant failed.  ``write(path)`` saves it as JSON, which
    ``SyncReport.load(path)`` and ``tenant-sync report PATH`` read back.  ``run`` is
    its header (:class:`RunInfo`); None in a report made by hand or by an older version.
    ``waves`` says how each wave of a staged run went (see :mod:`tenant_sync.waves`);
    empty for a run in one go.  ``databases`` says how each database of a fleet's run
    went (see :mod:`tenant_sync.fleet`); empty for a run on one database.
    """

    results: list[TenantResult] = field(default_factory=list)
    dry_run: bool = False
    started_at: str = field(default_factory=lambda: _now())
    finished_at: str | None = None
    duration_s: float = 0.0
    cancelled: bool = False
    note: str | None = None
    run: RunInfo | None = None
    waves: list[WaveOutcome] = field(default_factory=list)
    databases: list[DatabaseRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no tenant failed and every database of a fleet could be reached."""
        return all(result.status != "failed" for result in self.results) and not any(
            database.error for database in self.databases
        )

    @property
    def counts(self) -> dict[str, int]:
        """Number of tenants per status, every status present (zero if none)."""
        counter = Counter(result.status for result in self.results)
        return {status: counter.get(status, 0) for status in STATUSES}

    def failed(self) -> list[TenantResult]:
        """The tenants that failed."""
        return [result for result in self.results if result.status == "failed"]

    def get(self, schema: str, database: str | None = None) -> TenantResult | None:
        """The result of one tenant (in a fleet's report, of ``database``), or None if it
        was not in the run."""
        return next(
            (
                result
                for result in self.results
                if result.schema == schema and (database is None or result.database == database)
            ),
            None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data, with its format version."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "run": self.run.to_dict() if self.run is not None else None,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "cancelled": self.cancelled,
            "note": self.note,
            "ok": self.ok,
            "counts": self.counts,
            "waves": [wave.to_dict() for wave in self.waves],
            "databases": [database.to_dict() for database in self.databases],
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Return the report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON to ``path`` (atomically) and return the path."""
        return write_text_atomically(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: object) -> SyncReport:
        """Rebuild a report from :meth:`to_dict` output.

        :raises ReportFormatError: ``data`` is not a report, or one of a format version
            this tenant_sync does not read; the message says which.
        """
        if not isinstance(data, dict) or not {"format_version", "results"} <= data.keys():
            raise ReportFormatError(
                "not a tenant_sync report (expected a JSON object with format_version and results)"
            )
        version = data["format_version"]
        if version != REPORT_FORMAT_VERSION:
            raise ReportFormatError(
                f"unsupported report format version {version!r}: tenant_sync {__version__}"
                f" reads version {REPORT_FORMAT_VERSION} (a newer tenant_sync may read it)"
            )
        try:
            return cls(
                results=_results_of(data["results"]),
                dry_run=bool(data.get("dry_run", False)),
                started_at=str(data.get("started_at", "")),
                finished_at=data.get("finished_at"),
                duration_s=float(data.get("duration_s", 0.0)),
                cancelled=bool(data.get("cancelled", False)),
                note=data.get("note"),
                run=RunInfo.from_dict(data["run"]) if data.get("run") is not None else None,
                waves=_waves_of(data.get("waves") or []),
                databases=_databases_of(data.get("databases") or []),
            )
        except ReportFormatError:
            raise
        except (TypeError, ValueError) as exc:
            raise ReportFormatError(f"not a valid tenant_sync report: {exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SyncReport:
        """Read a report written by :meth:`write`.

        :raises OSError: the file cannot be read (missing, a directory, no permission).
        :raises ReportFormatError: it is not a report this version reads; the message
            names the file and what is wrong with it, in one line.
        """
        text = Path(path).read_bytes()
        try:
            return cls.from_dict(json.loads(text.decode("utf-8")))
        except UnicodeDecodeError:
            reason = "not JSON (not UTF-8 text)"
        except json.JSONDecodeError as exc:
            reason = f"not JSON ({exc})"
        except ReportFormatError as exc:
            reason = str(exc)
        raise ReportFormatError(f"cannot read report {os.fspath(path)}: {reason}")

    def summary(self) -> str:
        """One line: tenants by status and the run's time."""
        parts = [f"{count} {status}" for status, count in self.counts.items() if count]
        kind = "dry run" if self.dry_run else "sync"
        return (
            f"{kind} of {len(self.results)} tenants in {self.duration_s:.2f}s: "
            f"{', '.join(parts) or 'no tenants'}"
        )


def _waves_of(items: object) -> list[WaveOutcome]:
    if not isinstance(items, list):
        raise ReportFormatError("its waves are not a list")
    return [WaveOutcome.from_dict(item) for item in items]


def _databases_of(items: object) -> list[DatabaseRun]:
    if not isinstance(items, list):
        raise ReportFormatError("its databases are not a list")
    return [DatabaseRun.from_dict(item) for item in items]


def _results_of(items: object) -> list[TenantResult]:
    if not isinstance(items, list):
        raise ReportFormatError("its results are not a list")
    return [_result_of(number, item) for number, item in enumerate(items)]


def _result_of(number: int, item: object) -> TenantResult:
    """One result read back, its fields' types checked (no name from it in the message)."""
    if not isinstance(item, dict) or not isinstance(item.get("schema"), str):
        raise ReportFormatError(f"result {number} is not a tenant's result (no schema)")
    if item.get("status") not in STATUSES:
        raise ReportFormatError(f"result {number} has no known status ({', '.join(STATUSES)})")
    for key in _LIST_FIELDS:
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
            raise ReportFormatError(f"result {number}: {key} is not a list of strings")
    error, duration, attempts = (
        item.get("error"),
        item.get("duration_s", 0.0),
        item.get("attempts", 1),
    )
    if not (error is None or isinstance(error, str)) or not _is_number(duration, int, float):
        raise ReportFormatError(f"result {number}: error or duration_s has the wrong type")
    if not _is_number(attempts, int):
        raise ReportFormatError(f"result {number}: attempts is not a whole number")
    if not (item.get("database") is None or isinstance(item.get("database"), str)):
        raise ReportFormatError(f"result {number}: database is not a name")
    return TenantResult.from_dict(item)


def _is_number(value: object, *types: type) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
