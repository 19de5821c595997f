"""tenant_sync: keep every tenant schema of a PostgreSQL database in step with a SQLAlchemy model.

::

    from tenant_sync import TenantSync

    ts = TenantSync("postgresql+psycopg://app@localhost/app", Base.metadata)
    report = ts.sync_all()          # every tenant schema, in parallel
    ts.sync_tenant("tenant_acme")   # one new tenant, at signup
"""

from __future__ import annotations

from .coordinator import TenantSync
from .errors import ConfigurationError, DatabaseConnectionError, DiscoveryError, TenantSyncError
from .logs import add_shared_log_file
from .options import SyncOptions
from .report import SyncReport, TenantResult

__all__ = [
    "ConfigurationError",
    "DatabaseConnectionError",
    "DiscoveryError",
    "SyncOptions",
    "SyncReport",
    "TenantResult",
    "TenantSync",
    "TenantSyncError",
    "add_shared_log_file",
]

__version__ = "0.1.0"
