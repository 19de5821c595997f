"""A plain-text summary of a :class:`~tenant_sync.report.SyncReport`, for a terminal.

::

    from tenant_sync.output.summary import format_summary

    print(format_summary(report, slowest=10, color=sys.stdout.isatty()))

Sections, each left out when empty: totals by status and the run's time, under the run's
header (database, model, versions; its options when asked for); a staged run's waves,
one line each; the slowest tenants; every failed tenant with its error; skipped tenants with the
reason (the first few); what still differs from the model, grouped
by difference, with how many tenants each one concerns; accepted changes, counted.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable

from ..report import STATUSES, DatabaseRun, RunInfo, SyncReport, TenantResult, WaveOutcome

__all__ = [
    "difference_counts",
    "format_duration",
    "format_option",
    "format_run_info",
    "format_sql",
    "format_summary",
    "format_tenant_detail",
    "format_wave",
    "printable",
    "withheld_counts",
]

# ANSI SGR codes per status; only used when the caller asks for colour.
_STATUS_COLORS = {
    "migrated": "32",  # green
    "partial": "35",  # magenta
    "unchanged": "2",  # dim
    "planned": "36",  # cyan
    "failed": "31;1",  # bold red
    "skipped": "33",  # yellow
}

# Schema names and error text come from the database: control characters (an ESC in a
# schema name) must not reach the terminal as such.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: How many skipped tenants the summary names (a cancelled run may skip thousands).
SKIPPED_SHOWN = 10


def format_summary(
    report: SyncReport, slowest: int = 5, color: bool = False, options: bool = False
) -> str:
    """Return the report as a few plain-text sections for a terminal.

    A pure function of ``report``: nothing is printed.  ``slowest`` caps the list of
    slowest tenants (0 leaves the section out); failed tenants are always all listed.
    ``color`` adds ANSI colours to status names, for a tty.  ``options`` adds the run's
    options to its header (``tenant-sync report`` shows them; after a run, the command
    line that was typed does).
    """
    sections = [
        _totals(report, color, options),
        _databases(report.databases),
        _waves(report.waves),
        _slowest(report.results, slowest),
        _failures(report.failed(), color),
        _partial(report.results, color),
        _skipped(report.results, color),
        _differences(report.results),
        _accepted(report.results),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def format_duration(seconds: float) -> str:
    """Seconds in short human form: ``0.042s``, ``12.34s``, ``3m05s``, ``1h02m``."""
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_run_info(run: RunInfo, options: bool = False, width: int = 100) -> list[str]:
    """A report's header as indented lines: database and server, model, versions, options.

    ::

          database  postgresql+psycopg://app:***@db/app (PostgreSQL 15.4)
          model     myapp.models:Base (fingerprint 3f2a9c0d1e4b)
          versions  tenant_sync 0.1.0, alembic 1.13.2, sqlalchemy 2.0.31, psycopg 3.2.1
          options   dry_run no, tenants 'tenant\\_%', workers 8, allow [safe, data_dependent], ...
    """
    server = run.versions.get("postgresql")
    fingerprint = f" (fingerprint {run.model_fingerprint[:12]})" if run.model_fingerprint else ""
    libraries = [
        f"{name} {version}" for name, version in run.versions.items() if name != "postgresql"
    ]
    lines = [
        f"  database  {printable(run.database)}"
        + (f" (PostgreSQL {printable(server)})" if server else ""),
        f"  model     {printable(run.model)}{fingerprint}",
        f"  versions  {printable(', '.join(libraries) or 'unknown')}",
    ]
    if options and run.options:
        text = ", ".join(
            f"{name} {format_option(name, value)}" for name, value in run.options.items()
        )
        indent = "  options   "
        lines += textwrap.wrap(
            printable(text),
            width,
            initial_indent=indent,
            subsequent_indent=" " * len(indent),
            break_long_words=False,
            break_on_hyphens=False,
        )
    return lines


def format_option(name: str, value: object, shown: int = 5) -> str:
    """One option of a run's header in words: ``yes``/``no``, ``none``, ``[a, b]``, ``'a b'``.

    ``tenants`` None reads ``every schema``; a list longer than ``shown`` is cut short
    with the count of the rest.
    """
    if value is None:
        return "every schema" if name == "tenants" else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if not value:
            return "none"
        items = [format_option(name, item) for item in value[:shown]]
        if len(value) > shown:
            items.append(f"... {len(value) - shown:,} more")
        return "[" + ", ".join(items) + "]"
    text = str(value)
    return f"'{text}'" if isinstance(value, str) and (name == "tenants" or " " in text) else text


def withheld_counts(results: Iterable[TenantResult]) -> list[tuple[str, int]]:
    """Each withheld change with the number of tenants it was withheld in, most first."""
    counter = Counter(change for result in results for change in set(result.withheld))
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def difference_counts(results: Iterable[TenantResult]) -> list[tuple[str, int]]:
    """Each remaining difference with the number of tenants that have it, most first."""
    counter = Counter(change for result in results for change in set(result.differences))
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def format_tenant_detail(result: TenantResult, with_sql: bool = False) -> str:
    """One tenant's result: status, operations with their classes, differences, error, SQL."""
    attempts = f" after {result.attempts} attempts" if result.attempts > 1 else ""
    lines = [f"{printable(result.name)}: {result.status} in {result.duration_s:.3f}s{attempts}"]
    classes = result.classes or [""] * len(result.operations)
    sections = (
        (
            "Operations",
            [f"[{c}] {op}" if c else op for op, c in zip(result.operations, classes, strict=False)],
        ),
        ("Data steps", result.steps),
        ("Online steps", result.online),
        ("Still differs", result.differences),
        ("Withheld", result.withheld),
        ("Accepted", result.accepted),
    )
    for title, items in sections:
        if items:
            lines.append(f"{title} ({len(items)})")
            lines.extend(f"  {printable(item)}" for item in items)
    if result.error:
        lines.append(f"Error\n  {printable(result.error)}")
    if with_sql and result.sql:
        lines.append(f"SQL ({len(result.sql)} statements)\n{format_sql(result.sql)}")
    return "\n".join(lines)


def format_sql(statements: Iterable[str]) -> str:
    """Statements one after another, each ending in a semicolon."""
    stripped = (sql.strip() for sql in statements)
    return "\n".join(sql if sql.endswith(";") else sql + ";" for sql in stripped)


def _totals(report: SyncReport, color: bool, options: bool) -> str:
    kind = "Dry run" if report.dry_run else "Sync"
    lines = [
        f"{kind} of {_tenants(len(report.results))} in {format_duration(report.duration_s)}"
        f" (started {report.started_at}, finished {report.finished_at or 'not finished'})"
    ]
    if report.run is not None:
        lines.extend(format_run_info(report.run, options))
    if report.cancelled:
        lines.append("  cancelled before every tenant was done")
    if report.note:
        lines.append(f"  note: {printable(report.note)}")
    counts = report.counts
    width = max(len(f"{count:,}") for count in counts.values())
    for status in STATUSES:
        label = _paint(f"{status:<9}", status, color and counts[status] > 0)
        lines.append(f"  {label} {counts[status]:>{width},}")
    return "\n".join(lines)


def _databases(databases: list[DatabaseRun]) -> str:
    """A fleet's databases, each with its tenants by status, or why it was unreachable."""
    lines = []
    for database in databases:
        tenants = sum(database.counts.values())
        counts = ", ".join(f"{count:,} {status}" for status, count in database.counts.items())
        line = f"  {printable(database.name)}: {_tenants(tenants)}" + (
            f": {counts}" if counts else ""
        )
        if database.error:
            line = f"  {printable(database.name)}: unreachable: {printable(database.error)}"
            if tenants:
                line += f" ({_tenants(tenants)}: {counts})"
        lines.append(line)
    return "\n".join(["By database", *lines]) if lines else ""


def _waves(waves: list[WaveOutcome]) -> str:
    """Each wave of a staged run in one line: its size, its outcome, why the run stopped."""
    if not waves:
        return ""
    lines = ["Waves"]
    for wave in waves:
        lines.append(f"  {wave.number} of {len(waves)}: {printable(format_wave(wave))}")
        if wave.note:
            lines.append(f"    stopped: {printable(wave.note)}")
    return "\n".join(lines)


def format_wave(wave: WaveOutcome, named: int = 3) -> str:
    """A wave in words: ``5 tenants (t1, t2, t3, ...): 4 migrated, 1 failed``, or ``not started``."""
    done = ", ".join(f"{count:,} {status}" for status, count in wave.counts.items())
    first = ", ".join(wave.tenants[:named]) + (", ..." if len(wave.tenants) > named else "")
    return f"{_tenants(len(wave.tenants))} ({first}): {done if wave.started else 'not started'}"


def _slowest(results: list[TenantResult], limit: int) -> str:
    # Tenants settled by their shape's plan (attempts == 0) took no time of their own.
    timed = [result for result in results if result.attempts > 0]
    if limit <= 0 or not timed:
        return ""
    top = sorted(timed, key=lambda result: (-result.duration_s, result.name))[:limit]
    width = max(len(printable(result.name)) for result in top)
    lines = ["Slowest tenants"]
    for result in top:
        attempts = f"  ({result.attempts} attempts)" if result.attempts > 1 else ""
        lines.append(
            f"  {printable(result.name):<{width}}  {format_duration(result.duration_s):>8}"
            f"  {result.status}{attempts}"
        )
    return "\n".join(lines)


def _failures(failed: list[TenantResult], color: bool) -> str:
    if not failed:
        return ""
    lines = [_paint(f"Failed tenants ({len(failed):,})", "failed", color)]
    for result in sorted(failed, key=lambda result: result.name):
        attempts = f" (after {result.attempts} attempts)" if result.attempts > 1 else ""
        error = printable(result.error or "no error recorded").splitlines() or [""]
        lines.append(f"  {printable(result.name)}{attempts}: {error[0]}")
        lines.extend(f"      {line}" for line in error[1:])
    return "\n".join(lines)


def _partial(results: list[TenantResult], color: bool) -> str:
    partial = sorted((r for r in results if r.status == "partial"), key=lambda r: r.name)
    if not partial:
        return ""
    lines = [_paint(f"Partial tenants ({len(partial):,}): a rerun finishes them", "partial", color)]
    for result in partial:
        lines.append(f"  {printable(result.name)}: {printable(result.error or '')}")
    return "\n".join(lines)


def _skipped(results: list[TenantResult], color: bool) -> str:
    skipped = sorted((r for r in results if r.status == "skipped"), key=lambda r: r.name)
    if not skipped:
        return ""
    lines = [_paint(f"Skipped tenants ({len(skipped):,})", "skipped", color)]
    for result in skipped[:SKIPPED_SHOWN]:
        reason = (printable(result.error or "no reason recorded").splitlines() or [""])[0]
        lines.append(f"  {printable(result.name)}: {reason}")
    if len(skipped) > SKIPPED_SHOWN:
        lines.append(f"  ... and {len(skipped) - SKIPPED_SHOWN:,} more")
    return "\n".join(lines)


def _differences(results: list[TenantResult]) -> str:
    counts = difference_counts(results)
    if not counts:
        return ""
    lines = [
        "Still differs from the model (--allow CLASS applies a withheld class;"
        " --accept CHANGE stops the warning)"
    ]
    lines.extend(f"  {printable(change)} — {_tenants(count)}" for change, count in counts)
    return "\n".join(lines)


def _accepted(results: list[TenantResult]) -> str:
    counter = Counter(change for result in results for change in set(result.accepted))
    if not counter:
        return ""
    lines = ["Accepted differences (not applied, not warned about)"]
    lines.extend(
        f"  {printable(change)} — {_tenants(count)}" for change, count in counter.most_common()
    )
    return "\n".join(lines)


def _tenants(count: int) -> str:
    return f"{count:,} tenant" + ("" if count == 1 else "s")


def _paint(text: str, status: str, color: bool) -> str:
    return f"\x1b[{_STATUS_COLORS[status]}m{text}\x1b[0m" if color else text


def printable(text: str) -> str:
    """``text`` with control characters written as ``\\xNN``: names and errors come from
    the database, and an ESC in a schema name must not reach a terminal as such."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
