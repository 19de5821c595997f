"""The fleet side of ``tenant-sync``: ``--url NAME=URL`` repeated, ``--fleet FILE``, ``--shard``,
and ``report merge``.

A fleet file is TOML::

    max_workers = 12            # optional: tenants at once over the fleet

    [databases]
    eu = "postgresql+psycopg://app@db-eu/app"
    us = "postgresql+psycopg://app:${US_PASSWORD}@db-us/app"   # $VAR and ${VAR} expanded
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError, ReportFormatError
from ..fleet.merge import merge_reports
from ..output.summary import format_summary
from ..report import SyncReport

__all__ = ["FleetConfig", "fleet_config", "merge_command", "plain_urls"]

# NAME=URL: a name is a word; a URL has "://" before any "=", so it never matches.
_NAMED_URL = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")


@dataclass(frozen=True)
class FleetConfig:
    """The databases of a fleet run, by name, and its overall worker limit (None: none)."""

    databases: dict[str, str]
    max_workers: int | None = None


def fleet_config(args: argparse.Namespace) -> FleetConfig | None:
    """The fleet that ``--url NAME=URL`` (repeated) or ``--fleet FILE`` gives; None for one
    database (a single ``--url URL``, or none).

    :raises ConfigurationError: a name given twice, a URL without a name among several,
        ``--fleet`` with ``--url``, or a fleet file that cannot be read.
    """
    urls: list[str] = args.url or []
    fleet_file: str | None = getattr(args, "fleet", None)
    if fleet_file is not None:
        if urls:
            raise ConfigurationError("give the databases by --fleet or by --url, not both")
        config = _read_fleet_file(fleet_file)
    elif len(urls) > 1 or any(_NAMED_URL.match(url) for url in urls):
        config = FleetConfig(_named(urls))
    else:
        return None
    max_workers = getattr(args, "max_workers", None)
    return FleetConfig(config.databases, max_workers or config.max_workers)


def plain_urls(args: argparse.Namespace) -> str | None:
    """The one ``--url`` of a run on one database, or None when none was given."""
    urls: list[str] = args.url or []
    return urls[0] if urls else None


def merge_command(args: argparse.Namespace) -> SyncReport:
    """``report merge A.json B.json ... --out all.json``: the merged report, written."""
    paths: list[str] = args.path[1:]
    if not paths:
        raise ConfigurationError(
            "report merge takes the reports to merge: report merge A.json B.json"
        )
    if not args.out:
        raise ConfigurationError("report merge writes its result to --out PATH")
    reports = []
    for path in paths:
        try:
            reports.append(SyncReport.load(path))
        except OSError as exc:
            raise ConfigurationError(f"cannot read report {path}: {exc.strerror or exc}") from exc
        except ReportFormatError:
            raise
    merged = merge_reports(reports)
    print(format_summary(merged, color=sys.stdout.isatty(), options=True), end="")
    return merged


def _named(urls: list[str]) -> dict[str, str]:
    databases: dict[str, str] = {}
    for url in urls:
        match = _NAMED_URL.match(url)
        if match is None:
            raise ConfigurationError(
                "several databases need a name each: --url NAME=URL (e.g. --url eu=postgresql://...)"
            )
        name, value = match.groups()
        if name in databases:
            raise ConfigurationError(f"database {name!r} given twice")
        databases[name] = value
    return databases


def _read_fleet_file(path: str) -> FleetConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read fleet file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"fleet file {path} is not TOML: {exc}") from exc
    databases = data.get("databases")
    if not isinstance(databases, dict) or not databases:
        raise ConfigurationError(f"fleet file {path} has no [databases] table of NAME = URL")
    for name, url in databases.items():
        if not isinstance(url, str):
            raise ConfigurationError(f"fleet file {path}: database {name!r} is not a URL string")
    max_workers = data.get("max_workers")
    if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
        raise ConfigurationError(f"fleet file {path}: max_workers must be a whole number >= 1")
    expanded = {name: os.path.expandvars(url) for name, url in databases.items()}
    return FleetConfig(expanded, max_workers)
