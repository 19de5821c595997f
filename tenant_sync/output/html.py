"""A :class:`~tenant_sync.report.SyncReport` as one static HTML page: no external assets.

::

    from tenant_sync.output.html import write_html

    write_html(report, "reports/sync.html")   # open it in any browser, even offline

The header is rendered here, every value escaped: the run's verdict, times and counts, and
what it was run against (:class:`~tenant_sync.report.RunInfo`: the database, password
masked, the model, the versions, the options).  The per-tenant table is
rendered in the browser from the report's JSON, embedded in a
``<script type="application/json">`` tag, with ``textContent`` only: tenant names and
errors are never parsed as HTML.  Rows are built when first shown and reused, added 250
at a time as the table is scrolled; a tenant's operations, withheld changes and SQL are
built when its row is first expanded.  Each row shows its operations and withheld
changes with their classes, and how many differences from the model remain; a row's
details list them.  So a report of 10,000 tenants opens in well under a second.

The page, its style and its script are ``assets/report.html``, ``report.css`` and
``report.js`` beside this module, read once as package data.

The page reads its URL fragment on load and when it changes, e.g.
``report.html#status=failed&differs=1&q=acme&sort=duration_s&dir=desc&open=tenant_acme``, and keeps
the fragment in step with the controls so a filtered view can be shared as a link.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from html import escape
from importlib.resources import files
from itertools import zip_longest
from pathlib import Path

from ..classes import CHANGE_CLASSES
from ..files import write_text_atomically
from ..report import STATUSES, DatabaseRun, RunInfo, SyncReport, WaveOutcome
from .change_sets import NAMES_SHOWN, group_change_sets
from .summary import format_duration, format_option, format_wave

__all__ = ["render_html", "write_html"]

#: How many change sets the page lists; the table below has every tenant.
_CHANGE_SETS_SHOWN = 20

#: How the header names the libraries of ``RunInfo.versions``.
_LIBRARIES = {
    "tenant_sync": "tenant_sync",
    "alembic": "Alembic",
    "sqlalchemy": "SQLAlchemy",
    "psycopg": "psycopg",
    "postgresql": "PostgreSQL",
}

_SLOT = re.compile(r"__([A-Z]+)__")


def render_html(report: SyncReport) -> str:
    """Return the report as a complete, self-contained HTML page."""
    kind = "Dry run" if report.dry_run else "Sync"
    title = f"tenant_sync {kind.lower()}: {len(report.results):,} tenants"
    parts = {
        "TITLE": escape(title),
        "STYLE": _asset("report.css"),
        "HEADER": _header(report, kind),
        "CHANGESETS": _change_sets(report),
        "OPTIONS": _status_options(report),
        "DIFFERING": f"{_differing(report):,}",
        "DATA": _embedded_json(report),
        "SCRIPT": _asset("report.js"),
    }
    # One pass over the template: text put in (a tenant named __SCRIPT__) is not rescanned.
    return _SLOT.sub(lambda match: parts[match.group(1)], _asset("report.html"))


def write_html(report: SyncReport, path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_html` output to ``path`` (atomically) and return the path."""
    return write_text_atomically(path, render_html(report))


def _header(report: SyncReport, kind: str) -> str:
    failed = report.counts["failed"]
    partial = report.counts["partial"]
    down = sum(1 for database in report.databases if database.error)
    verdict = f"{failed:,} failed" if failed else "no failures"
    verdict += f", {partial:,} partial" if partial else ""
    verdict += f", {down:,} database{'s' if down > 1 else ''} unreachable" if down else ""
    facts = [
        ("Run", kind),
        ("Tenants", f"{len(report.results):,}"),
        ("Started", report.started_at or "unknown"),
        ("Finished", report.finished_at or "not finished"),
        ("Duration", format_duration(report.duration_s)),
        ("Still differ", f"{_differing(report):,} tenants"),
    ]
    if report.cancelled:
        facts.append(("Cancelled", "yes, before every tenant was done"))
    if report.note:
        facts.append(("Note", report.note))
    chips = "".join(
        f'<button type="button" class="chip status-{status}" data-status="{status}">'
        f"{status} <b>{count:,}</b></button>"
        for status, count in report.counts.items()
    )
    return (
        f'<h1>{escape(kind)} report <span class="verdict {"bad" if failed or partial or down else "good"}">'
        f"{escape(verdict)}</span></h1>{_facts(facts)}"
        f"{_run_info(report.run) if report.run is not None else ''}{_databases(report)}"
        f"{_waves(report.waves)}"
        f'<div class="chips" aria-label="Tenants by status">{chips}</div>'
    )


def _run_info(run: RunInfo) -> str:
    """What the run was run against (database, model, versions) and its options, escaped."""
    model = run.model + (
        f" (fingerprint {run.model_fingerprint[:12]})" if run.model_fingerprint else ""
    )
    against = [("Database", run.database), ("Model", model)]
    against += [(_LIBRARIES.get(name, name), value) for name, value in run.versions.items()]
    options = [(name, format_option(name, value)) for name, value in run.options.items()]
    return (
        f'<section class="run" aria-label="Run against">{_facts(against, "against")}'
        f"{_facts(options, 'options')}</section>"
    )


def _databases(report: SyncReport) -> str:
    """A fleet's databases, each with its tenants by status, or why it was unreachable."""
    items = "".join(_database(database) for database in report.databases)
    if not items:
        return ""
    return (
        '<section class="waves databases" aria-label="Databases"><h2>Databases</h2>'
        f"<ul>{items}</ul></section>"
    )


def _database(database: DatabaseRun) -> str:
    counts = ", ".join(f"{count:,} {status}" for status, count in database.counts.items())
    tenants = sum(database.counts.values())
    text = f"{database.name}: {tenants:,} tenant{'' if tenants == 1 else 's'}"
    text += f" ({counts})" if counts else ""
    unreachable = (
        f' <span class="stopped">unreachable: {escape(database.error)}</span>'
        if database.error
        else ""
    )
    return f"<li>{escape(text)} <small>{escape(database.url)}</small>{unreachable}</li>"


def _waves(waves: list[WaveOutcome]) -> str:
    """A staged run's waves, one item each, with why the run stopped (escaped)."""
    if not waves:
        return ""
    items = "".join(
        f"<li>{escape(format_wave(wave))}"
        + (f' <span class="stopped">stopped: {escape(wave.note)}</span>' if wave.note else "")
        + "</li>"
        for wave in waves
    )
    return f'<section class="waves" aria-label="Waves"><h2>Waves</h2><ol>{items}</ol></section>'


def _facts(facts: list[tuple[str, str]], kind: str = "facts") -> str:
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    return f'<dl class="{kind}">{items}</dl>'


def _differing(report: SyncReport) -> int:
    return sum(1 for result in report.results if result.differences)


def _change_sets(report: SyncReport) -> str:
    """Each distinct change set once, with its tenant count and first names (escaped)."""
    views = group_change_sets(report.results)
    if not views:
        return ""
    blocks = []
    for number, view in enumerate(views[:_CHANGE_SETS_SHOWN], start=1):
        names = view.tenants
        shown = ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")
        count = f"{len(names):,} tenant" + ("" if len(names) == 1 else "s")
        items = [
            f'<li><span class="class {_class_style(change_class)}">{escape(change_class)}</span>'
            f" {escape(operation)}</li>"
            for operation, change_class in zip_longest(view.operations, view.classes, fillvalue="")
        ]
        items += [
            f'<li><span class="class differs">still differs</span> {escape(text)}</li>'
            for text in view.differences
        ]
        failing = sum(1 for error in view.errors.values() if error)
        if failing:
            items.append(
                f'<li><span class="class failed">failed</span> {failing:,} of {count}</li>'
            )
        blocks.append(
            f"<details><summary>Change set {number}: {escape(count)} ({escape(shown)})</summary>"
            f"<ul>{''.join(items)}</ul></details>"
        )
    if len(views) > _CHANGE_SETS_SHOWN:
        blocks.append(f"<p>... and {len(views) - _CHANGE_SETS_SHOWN:,} more change sets</p>")
    return f'<section class="change-sets"><h2>Change sets</h2>{"".join(blocks)}</section>'


def _class_style(change_class: str) -> str:
    """The CSS class of a change class's tag; ``cls-other`` for one read from elsewhere."""
    return f"cls-{change_class}" if change_class in CHANGE_CLASSES else "cls-other"


def _status_options(report: SyncReport) -> str:
    counts = report.counts
    options = [f'<option value="all">all ({len(report.results):,})</option>']
    options.extend(
        f'<option value="{status}">{status} ({counts[status]:,})</option>' for status in STATUSES
    )
    return "".join(options)


def _embedded_json(report: SyncReport) -> str:
    # Inside <script> only "</script" and "<!--" are special; escaping every <, > and &
    # as a JSON \u escape rules both out and leaves the JSON meaning unchanged.
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _asset(name: str) -> str:
    """A file of ``assets/``, read once."""
    return (files("tenant_sync.output") / "assets" / name).read_text(encoding="utf-8")
