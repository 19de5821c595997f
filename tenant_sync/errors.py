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
    """An argument or setting is invalid; the message names it and says what to do.

    ``option`` is the keyword argument at fault (``workers``), when there is one: the
    command line names its flag (``--workers``) instead.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option

    def for_command_line(self) -> str:
        """The message with the keyword argument written as the command line's flag."""
        message = str(self)
        if self.option and message.startswith(self.option):
            flag = "--" + self.option.replace("_", "-")
            return flag + message[len(self.option) :]
        return message


class DatabaseConnectionError(TenantSyncError):
    """The database cannot be reached or refuses the login (password masked)."""


class DiscoveryError(TenantSyncError):
    """The tenant schemas cannot be listed, e.g. because a ``tenants`` callable raised."""


class ReportFormatError(TenantSyncError, ValueError):
    """Not a report this version of tenant_sync reads: not JSON, not a report, another format."""
