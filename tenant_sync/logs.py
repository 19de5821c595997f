"""The ``tenant_sync`` logger, and an opt-in log file that several processes can share.

tenant_sync logs like a library: modules log to children of the ``tenant_sync``
logger, one INFO line per tenant, and no handler is attached unless asked for.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from concurrent_log_handler import ConcurrentRotatingFileHandler

__all__ = ["LOG_FORMAT", "add_shared_log_file", "logger"]

#: The parent logger of every tenant_sync module.
logger = logging.getLogger("tenant_sync")

#: One line per record, with the process id so lines from several processes can be told apart.
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def add_shared_log_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    level: int = logging.INFO,
) -> logging.Handler:
    """Log ``tenant_sync`` to ``path``, safely shared by several processes, rotating it.

    Uses concurrent-log-handler's ``ConcurrentRotatingFileHandler``, which takes a file
    lock around each write and each rotation, so lines from concurrent runs are never
    lost or interleaved.  Returns the handler (remove it with ``logger.removeHandler``).
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = ConcurrentRotatingFileHandler(
        os.fspath(path),
        mode="a",
        maxBytes=max_bytes,
        backupCount=backup_count,
        encoding="utf-8",
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler
