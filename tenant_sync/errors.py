"""The exceptions tenant_sync raises.

Configuration and connection problems are raised; a failure inside one tenant
is never raised but reported in that tenant's :class:`~tenant_sync.TenantResult`.

::

    TenantSyncError
     ├── ConfigurationError      bad arguments: URL, metadata, tenant names, options
     ├── DatabaseConnectionError the server cannot be reached or refuses the login
     ├── DiscoveryError          the tenant schemas cannot be listed
     └── ReportFormatError       a file or data that is not a report this version reads
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DatabaseConnectionError",
    "DiscoveryError",
    "ReportFormatError",
    "TenantSyncError",
]


class TenantSyncError(Exception):
    """Base class of every exception raised by tenant_sync."""


class ConfigurationError(TenantSyncError, ValueError):
    """An argument or setting is invalid; the message names it and says what to do."""


class DatabaseConnectionError(TenantSyncError):
    """The database cannot be reached or refuses the login (password masked)."""


class DiscoveryError(TenantSyncError):
    """The tenant schemas cannot be listed, e.g. because a ``tenants`` callable raised."""


class ReportFormatError(TenantSyncError, ValueError):
    """Not a report this version of tenant_sync reads: not JSON, not a report, another format."""
