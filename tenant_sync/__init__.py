"""tenant_sync: keep every tenant schema of a PostgreSQL database in step with a SQLAlchemy model.

::

    from tenant_sync import TenantSync

    ts = TenantSync("postgresql+psycopg://app@localhost/app", Base.metadata)
    report = ts.sync_all()          # every tenant schema, in parallel
    ts.sync_tenant("tenant_acme")   # one new tenant, at signup

The public API is what this module exports, the ``tenant-sync`` command, and the
output helpers in :mod:`tenant_sync.output` (terminal summary, live progress, HTML
report).  Every other module is internal: its names may change in any release.

The package, from the top down (each layer imports only those below it):

* the facade, :mod:`~tenant_sync.coordinator`: discover, plan by shape, settle what
  the plan settles, run the rest in worker threads (in waves, :mod:`~tenant_sync.waves`,
  when staged), report;
* one tenant alone, :mod:`~tenant_sync.tenant`: its round trip if it has one, else
  compared alone; retried;
* the fast path, :mod:`tenant_sync.fastpath`: the catalog pass, one comparison per
  distinct shape, one round trip per changed tenant, signups from a kept plan;
* the online path, :mod:`tenant_sync.online`: a big table's changes in two phases,
  lock-safe, resumable from the catalog;
* the core: :mod:`~tenant_sync.plan` and :mod:`~tenant_sync.apply` (Alembic
  autogenerate and ``Operations`` on one connection), :mod:`~tenant_sync.session`,
  :mod:`~tenant_sync.version_table`, :mod:`~tenant_sync.failures`,
  :mod:`~tenant_sync.sql`, :mod:`~tenant_sync.report` and the rest;
* beside them, over the public API: :mod:`tenant_sync.output`, :mod:`~tenant_sync.cli`
  and :mod:`tenant_sync.demo`.
"""

from __future__ import annotations

from .coordinator import TenantSync
from .errors import (
    ConfigurationError,
    DatabaseConnectionError,
    DiscoveryError,
    ReportFormatError,
    TenantSyncError,
)
from .fleet import Fleet
from .logs import add_shared_log_file
from .report import DatabaseRun, Drift, RunInfo, SyncReport, TenantResult, WaveOutcome
from .selection import Selection
from .steps import Steps
from .versions import __version__

__all__ = [
    "ConfigurationError",
    "DatabaseConnectionError",
    "DatabaseRun",
    "DiscoveryError",
    "Drift",
    "Fleet",
    "ReportFormatError",
    "RunInfo",
    "Selection",
    "Steps",
    "SyncReport",
    "TenantResult",
    "TenantSync",
    "TenantSyncError",
    "WaveOutcome",
    "__version__",
    "add_shared_log_file",
]
