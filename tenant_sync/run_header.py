"""What a report says about its run, beside its tenants: the header, a staged run's waves,
and a fleet's databases.

All three are part of a :class:`~tenant_sync.report.SyncReport` (and re-exported there), in its
JSON under the optional keys ``run``, ``waves`` and ``databases``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ReportFormatError

__all__ = ["DatabaseRun", "RunInfo", "WaveOutcome"]


@dataclass(frozen=True)
class RunInfo:
    """What a run was run against and how: the header of its report.

    :class:`~tenant_sync.TenantSync` fills it when a run starts (:meth:`~tenant_sync.TenantSync.run_info`).

    :ivar run_id: the run's id, which each tenant's history entry of this run names (see
        :mod:`tenant_sync.history`); empty in a report of an older version.
    :ivar database: the database URL, password masked (``postgresql+psycopg://app:***@db/app``).
    :ivar model: the model, as ``module:attribute`` (what ``--model`` takes) where it can
        be told, else a description such as ``a MetaData of 3 tables (a, b, c)``.
    :ivar model_fingerprint: the hash of the model's tenant tables that each tenant's
        version table records: equal for equal models.
    :ivar versions: by name: ``tenant_sync``, ``alembic``, ``sqlalchemy``, ``psycopg``
        and ``postgresql`` (the server's).
    :ivar options: the run's options by name, JSON-ready: ``dry_run``, ``tenants``, then
        each :class:`~tenant_sync.TenantSync` option (``workers``, ``allow``,
        ``allow_destructive``, ``accept``, ``strict``, ``lock_timeout``, ...).  Read only.
    """

    database: str
    model: str
    model_fingerprint: str = ""
    run_id: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the header as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> RunInfo:
        """Rebuild a header from :meth:`to_dict` output; unknown keys are ignored."""
        if not isinstance(data, dict):
            raise ReportFormatError(f"its run header is not an object ({type(data).__name__})")
        versions, options = data.get("versions") or {}, data.get("options") or {}
        if not isinstance(versions, dict) or not isinstance(options, dict):
            raise ReportFormatError("its run header's versions and options must be objects")
        return cls(
            database=str(data.get("database", "")),
            model=str(data.get("model", "")),
            model_fingerprint=str(data.get("model_fingerprint", "")),
            run_id=str(data.get("run_id", "")),
            versions={str(name): str(value) for name, value in versions.items()},
            options=dict(options),
        )


@dataclass(frozen=True)
class WaveOutcome:
    """How one wave of a staged run went.

    :ivar number: the wave's number, from 1.
    :ivar tenants: its tenants, in the order they were taken.
    :ivar counts: its tenants by status (only the statuses that occur); empty if it did
        not start.
    :ivar started: False when an earlier wave had too many failures, or the run was
        cancelled, before this one.
    :ivar note: why the waves after this one did not start; None if they did (or if
        this is the last).
    """

    number: int
    tenants: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    started: bool = True
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> WaveOutcome:
        """Rebuild an outcome from :meth:`to_dict` output."""
        if not isinstance(data, dict) or not isinstance(data.get("number"), int):
            raise ReportFormatError("a wave of its waves is not an object with a number")
        tenants, counts, note = data.get("tenants", []), data.get("counts", {}), data.get("note")
        if not isinstance(tenants, list) or not isinstance(counts, dict):
            raise ReportFormatError(f"wave {data['number']}: tenants or counts of the wrong type")
        return cls(
            data["number"],
            tuple(map(str, tenants)),
            {str(status): int(count) for status, count in counts.items()},
            bool(data.get("started", True)),
            None if note is None else str(note),
        )


@dataclass(frozen=True)
class DatabaseRun:
    """How one database of a fleet's run went (see :mod:`tenant_sync.fleet`).

    :ivar name: the fleet's name for the database.
    :ivar url: its URL, password masked.
    :ivar counts: its tenants by status (only the statuses that occur).
    :ivar duration_s: wall time of its run.
    :ivar error: why it could not be reached, at the start or mid-run (its tenants not
        run are then ``skipped``); None when it answered throughout.
    """

    name: str
    url: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> DatabaseRun:
        """Rebuild an outcome from :meth:`to_dict` output."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ReportFormatError("a database of its databases is not an object with a name")
        counts, error = data.get("counts", {}), data.get("error")
        if not isinstance(counts, dict) or not (error is None or isinstance(error, str)):
            raise ReportFormatError(f"database {data['name']}: counts or error of the wrong type")
        return cls(
            data["name"],
            str(data.get("url", "")),
            {str(status): int(count) for status, count in counts.items()},
            float(data.get("duration_s", 0.0)),
            error,
        )
