"""The ``tenant-sync`` command: a thin layer over :class:`~tenant_sync.TenantSync`.

Also run as ``python -m tenant_sync``.

::

    tenant-sync sync   --url URL --model myapp.models:Base [--tenants 'tenant\\_%'] [--exclude X]
    tenant-sync plan   --url URL --model myapp.models:Base [--sql] [--exit-code]  # sync --dry-run
    tenant-sync drift  --url URL --model myapp.models:Base [--exit-code]  # what differs, by shape
    tenant-sync signup --url URL --model myapp.models:Base NAME [NAME ...]  # create and build
    tenant-sync list   --url URL [--tenants NAME|PATTERN] [--model myapp.models:Base] [--names]
    tenant-sync report r.json [--failed | --tenant NAME] [--sql] [--html r.html]
    tenant-sync report merge share-*.json --out all.json [--html all.html]
    tenant-sync demo   [--url URL] [--html demo-report.html]

``sync``, ``plan`` and ``drift`` drive a fleet of databases with ``--url NAME=URL``
repeated or ``--fleet FILE`` (see :mod:`tenant_sync.cli.fleet`), and take a share of the
tenants with ``--shard I/N``.

``--tenants`` and ``--exclude`` are repeatable and take comma-separated items, each the
exact name of a schema if one exists, else a SQL LIKE pattern (see
:mod:`tenant_sync.discovery`).

Exit codes: 0 every tenant fine, 1 some tenant failed (or was skipped, or none matched), 2 usage,
configuration or connection error, 130 interrupted.  ``plan`` and ``drift`` with
``--exit-code``: 0 nothing to do, 1 some tenant would fail, 3 changes pending, 4 some
tenant would still differ from the model after a sync.  Errors are one line on stderr,
password masked; ``--debug`` adds the traceback.  ``--url`` defaults to
``TENANT_SYNC_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from ..engine import mask_password
from ..errors import ConfigurationError, TenantSyncError
from ..output.progress import LiveProgress, ProgressLogHandler
from .commands import EXIT_INTERRUPTED, EXIT_USAGE, PROG, URL_ENVIRONMENT_VARIABLE
from .parser import build_parser

__all__ = ["URL_ENVIRONMENT_VARIABLE", "main"]

_STDERR_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tenant-sync`` with ``argv`` (default: the command line); return the exit code."""
    args = build_parser().parse_args(argv)  # exits 2 with a usage line on bad arguments
    progress = LiveProgress(sys.stderr) if _live(args) else None
    _configure_logging(args.debug, progress)
    try:
        return int(args.command(args, progress))
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if progress is not None:
            progress.clear()
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, ConfigurationError):
            message = exc.for_command_line()
        elif isinstance(exc, TenantSyncError):
            message = str(exc)
        else:
            message = f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)"
        first_line = (message.strip().splitlines() or [""])[0]
        print(f"{PROG}: error: {_mask(first_line, args)}", file=sys.stderr)
        return EXIT_USAGE


def _live(args: argparse.Namespace) -> bool:
    return (
        args.name in ("sync", "plan", "drift", "demo")
        and not args.no_progress
        and sys.stderr.isatty()
    )


def _configure_logging(debug: bool, progress: LiveProgress | None) -> None:
    """Log tenant_sync to stderr: INFO off a terminal; on one (above a live progress line,
    or not), WARNING."""
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr) if progress is None else ProgressLogHandler(progress)
    )
    handler.setFormatter(logging.Formatter(_STDERR_FORMAT, "%H:%M:%S"))
    on_terminal = progress is not None or sys.stderr.isatty()
    level = logging.DEBUG if debug else logging.WARNING if on_terminal else logging.INFO
    handler.setLevel(level)
    handler.name = PROG
    logger = logging.getLogger("tenant_sync")
    for old in [h for h in logger.handlers if h.name == PROG]:  # main() run again in-process
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(min(level, logging.INFO))  # INFO still reaches a --log-file


def _mask(text: str, args: argparse.Namespace) -> str:
    given = getattr(args, "url", None) or os.environ.get(URL_ENVIRONMENT_VARIABLE)
    for url in given if isinstance(given, list) else [given]:
        # A fleet's --url NAME=URL: the URL is after the name.
        name, equals, rest = (url or "").partition("=")
        plain = rest if equals and "://" not in name else url
        text = mask_password(text, plain)
    return text
