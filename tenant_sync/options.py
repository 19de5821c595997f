"""Frozen, validated settings of a sync run (internal: TenantSync takes them as parameters)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from .classes import DEFAULT_ALLOWED, AllowSpec
from .errors import ConfigurationError

__all__ = ["OnlineMode", "SyncOptions"]

#: ``online=``: which tables take the online path (see :mod:`tenant_sync.online`).
OnlineMode = Literal["auto", "always", "never"]

#: The version table tenant_sync keeps in each tenant schema.
DEFAULT_VERSION_TABLE = "tenant_sync_version"

#: The table of each tenant that holds its history (see :mod:`tenant_sync.history`).
HISTORY_TABLE = "tenant_sync_history"


@dataclass(frozen=True)
class SyncOptions:
    """How a run behaves: :class:`~tenant_sync.TenantSync`'s options, validated.

    Each field is the TenantSync parameter of the same name, documented there.  Frozen,
    and shared read-only by every worker thread.
    """

    workers: int = 4
    #: Resolved by :func:`tenant_sync.classes.parse_allow` (``allow_destructive`` included).
    allow: AllowSpec = DEFAULT_ALLOWED
    accept: tuple[str, ...] = ()
    strict: bool = False
    lock_timeout: float = 5.0
    statement_timeout: float | None = None
    retries: int = 2
    retry_backoff: float = 0.2
    version_table: str = DEFAULT_VERSION_TABLE
    verify: bool = False
    #: ``auto``, ``always`` or ``never`` (see :mod:`tenant_sync.online`).
    online: OnlineMode = "auto"
    online_min_rows: int = 100_000

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigurationError(
                f"workers must be a positive integer, got {self.workers!r}", option="workers"
            )
        _check_seconds("lock_timeout", self.lock_timeout)
        if self.statement_timeout is not None:
            _check_seconds("statement_timeout", self.statement_timeout)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(
                f"retries must be an integer >= 0, got {self.retries!r}", option="retries"
            )
        if not isinstance(self.retry_backoff, (int, float)) or self.retry_backoff < 0:
            raise ConfigurationError(
                f"retry_backoff must be >= 0 seconds, got {self.retry_backoff!r}",
                option="retry_backoff",
            )
        if self.online not in get_args(OnlineMode):
            raise ConfigurationError(
                f"online must be 'auto', 'always' or 'never', got {self.online!r}",
                option="online",
            )
        if (
            isinstance(self.online_min_rows, bool)
            or not isinstance(self.online_min_rows, int)
            or self.online_min_rows < 0
        ):
            raise ConfigurationError(
                f"online_min_rows must be an integer >= 0, got {self.online_min_rows!r}",
                option="online_min_rows",
            )
        if not self.version_table or len(self.version_table.encode()) > 63:
            raise ConfigurationError(
                f"version_table must be a name of 1 to 63 bytes, got {self.version_table!r}"
            )


def _check_seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name} must be a positive number of seconds, got {value!r}", option=name
        )
