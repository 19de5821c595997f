"""The HTML report as a person sees it, in headless Chromium: the run's header, each
tenant's drift and change classes, everything escaped, and a 10,000-tenant page.

One report comes from a real dry run (a model with a change of every class, a tenant
named and a comment worded to break a page that pasted them in as HTML); the large one
is built in Python.  The browser tests skip, saying why, when Chromium is missing.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from browser import DevTools, find_chromium
from helpers import make_schemas
from models import ledger_model
from sqlalchemy.engine import URL, Engine

from tenant_sync import RunInfo, SyncReport, TenantResult, TenantSync
from tenant_sync.output.html import render_html, write_html

PASSWORD = "html-S3cret-pw"
NASTY_SCHEMA = 'tenant_<img src=x onerror="alert(1)">'
NASTY_COMMENT = "</script><script>alert('comment')</script> & \"quoted\""
NASTY_MODEL = 'app.models:<Ledger "v2">'


def ledger(version: int) -> sa.MetaData:
    """The ledger model; version 2 has a change of each class, and a comment to escape."""
    metadata = ledger_model(version)
    if version >= 2:
        metadata.tables["entries"].c.note.comment = NASTY_COMMENT
    return metadata


@pytest.fixture
def dry_run(database_url: URL, engine: Engine) -> Iterator[SyncReport]:
    """A dry run to ledger v2 through a URL with a password: two tenants behind, one not."""
    make_schemas(engine, ["tenant_a", NASTY_SCHEMA, "tenant_c"])
    url = database_url.set(password=PASSWORD)  # the server's trust authentication ignores it
    with TenantSync(url, ledger(1)) as ts:
        assert ts.sync_all().ok
    with TenantSync(url, ledger(2), tenants=["tenant_c"], allow_destructive=True) as ts:
        assert ts.sync_all().ok
    with TenantSync(url, ledger(2), model_name=NASTY_MODEL, workers=2) as ts:
        yield ts.sync_all(dry_run=True)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, else the browser tests skip, saying so."""
    return find_chromium()


def test_the_page_header_says_what_the_run_was_run_against_all_escaped(
    dry_run: SyncReport,
) -> None:
    page = render_html(dry_run)
    run = dry_run.run
    assert run is not None
    header = page[page.index("<header>") : page.index("</header>")]
    assert f"<dd>{html.escape(run.database)}</dd>" in header and ":***@" in run.database
    assert (
        f"<dd>{html.escape(NASTY_MODEL)} (fingerprint {run.model_fingerprint[:12]})</dd>" in header
    )
    for label, name in (
        ("PostgreSQL", "postgresql"),
        ("Alembic", "alembic"),
        ("psycopg", "psycopg"),
    ):
        assert f"<dt>{label}</dt><dd>{run.versions[name]}</dd>" in header
    assert "<dt>workers</dt><dd>2</dd>" in header and "<dt>dry_run</dt><dd>yes</dd>" in header
    assert "<dt>Still differ</dt><dd>2 tenants</dd>" in header
    assert PASSWORD not in page
    for raw in (NASTY_SCHEMA, NASTY_COMMENT, NASTY_MODEL, "<script>alert"):
        assert raw not in page


def test_the_page_shows_the_header_each_tenants_drift_and_classes(
    chromium: str, dry_run: SyncReport, tmp_path: Path
) -> None:
    report_file = write_html(dry_run, tmp_path / "report.html")
    behind = dry_run.get("tenant_a")
    assert behind is not None and behind.status == "planned"
    with DevTools(chromium, tmp_path / "profile") as page:
        page.open(report_file.as_uri())
        facts = page.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('header dl div'),"
            " (d) => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))"
        )
        assert dry_run.run is not None
        assert facts["Database"] == dry_run.run.database
        assert facts["Model"].startswith(NASTY_MODEL + " (fingerprint ")
        assert facts["PostgreSQL"] == dry_run.run.versions["postgresql"]
        assert facts["tenant_sync"] == dry_run.run.versions["tenant_sync"]
        assert facts["allow"] == "[safe, data_dependent]" and facts["Tenants"] == "3"
        assert PASSWORD not in page.evaluate("document.documentElement.outerHTML")

        row = "document.querySelector('tr.tenant[data-schema=tenant_a]')"
        cells = page.evaluate(f"Array.from({row}.cells, (td) => td.innerText.trim())")
        assert cells[4] == "2"  # Differs
        tags = f"Array.from({row}.cells[%d].querySelectorAll('.cls'), (t) => t.innerText)"
        assert page.evaluate(tags % 2) == ["safe \u00d72", "data_dependent"]
        assert page.evaluate(tags % 3) == ["rewrite", "destructive"]

        page.click("tr.tenant[data-schema=tenant_a] button.toggle")
        detail = "document.querySelector('tr.detail[data-schema=tenant_a]')"
        assert page.wait_for(f"{detail} && {detail}.checkVisibility()")
        items = page.evaluate(
            f"Array.from({detail}.querySelectorAll('section'), (s) => [s.querySelector('h3')"
            ".textContent, Array.from(s.querySelectorAll('li'), (li) => li.innerText)])"
        )
        sections = dict(items)
        assert sections["Still differs from the model"] == behind.differences
        assert sections["Operations"] == [
            f"{change_class} {operation}"
            for operation, change_class in zip(behind.operations, behind.classes, strict=True)
        ]
        assert sections["Withheld (class not allowed)"] == [
            f"{change_class} {change}"
            for change, change_class in zip(behind.withheld, behind.withheld_classes, strict=True)
        ]
        sql = page.evaluate(f"{detail}.querySelector('pre.sql').innerText")
        assert f"IS '{NASTY_COMMENT.replace(chr(39), chr(39) * 2)}';" in sql  # quotes doubled

        page.click("#differs-filter")
        assert sorted(page.evaluate("tenantReport.visible()")) == sorted(["tenant_a", NASTY_SCHEMA])
        assert page.evaluate("location.hash") == "#differs=1"
        page.click("#differs-filter")
        page.type_text("#search", "DESTRUCTIVE")
        assert page.wait_for("tenantReport.visible().length === 2 && tenantReport.visible()")

        # The names and the SQL are text: no element came from them.
        assert page.evaluate("document.images.length + document.scripts.length") == 2
        nasty = (
            "Array.from(document.querySelectorAll('tr.tenant'))"
            f".find((tr) => tr.dataset.schema === {json.dumps(NASTY_SCHEMA)})"
        )
        assert page.evaluate(f"{nasty}.querySelector('button.toggle').textContent") == NASTY_SCHEMA
        change_set = page.evaluate("document.querySelector('.change-sets summary').innerText")
        assert change_set.startswith("Change set 1: 2 tenants (") and NASTY_SCHEMA in change_set


def test_ten_thousand_tenants_open_and_filter_in_chromium_timed_not_asserted(
    chromium: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: pytest.RecordProperty,
) -> None:
    report = large_report(10_000)
    report_file = write_html(report, tmp_path / "big.html")
    failed = sum(1 for result in report.results if result.status == "failed")
    differing = sum(1 for result in report.results if result.differences)
    with DevTools(chromium, tmp_path / "profile") as page:
        started = time.monotonic()
        page.open(report_file.as_uri())
        figures = {"open_wall_ms": (time.monotonic() - started) * 1000}
        figures.update(page.evaluate(_LOAD_FIGURES))
        assert "Showing 10,000 of 10,000 tenants" in page.evaluate("document.body.innerText")

        figures["status_filter_ms"] = page.evaluate(_timed("tenantReport.setStatus('failed')"))
        assert page.evaluate("tenantReport.matching().length") == failed
        page.evaluate("tenantReport.setStatus('all')")
        figures["differs_filter_ms"] = page.evaluate(_timed("tenantReport.setDiffers(true)"))
        assert page.evaluate("tenantReport.matching().length") == differing
        page.evaluate("tenantReport.setDiffers(false)")
        figures["search_ms"] = page.evaluate(_timed("tenantReport.setSearch('tenant_0999')"))
        assert page.evaluate("tenantReport.matching()") == [
            r.schema for r in report.results if "tenant_0999" in r.schema
        ]

        page.evaluate("tenantReport.setSearch('')")
        started = time.monotonic()
        page.type_text("#search", "notnullviolation")
        page.wait_for(f"tenantReport.matching().length === {failed}")
        figures["typed_search_wall_ms"] = (time.monotonic() - started) * 1000
        assert page.evaluate("document.getElementById('shown').textContent") == (
            f"Showing {failed} of 10,000 tenants"
        )
    for name, value in figures.items():
        record_property(name, round(value, 1))
    size_mb = report_file.stat().st_size / 1e6
    with capsys.disabled():
        print(
            f"\n[10,000 tenants, {size_mb:.1f} MB page in headless Chromium] "
            + ", ".join(f"{name} {value:,.0f}" for name, value in figures.items())
        )


# Navigation start (time 0) to: the table rendered with its handlers attached (the
# page's script done), DOMContentLoaded, the load event and the first contentful paint.
_LOAD_FIGURES = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return {interactive_ms: tenantReport.readyMs, script_ms: tenantReport.renderMs,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd,
    first_contentful_paint_ms: paint ? paint.startTime : -1};
})()"""


def _timed(action: str) -> str:
    """A script that runs ``action`` and returns its milliseconds up to the next paint."""
    return (
        "(async () => { const t0 = performance.now();"
        f" {action};"
        " await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));"
        " return performance.now() - t0; })()"
    )


def large_report(count: int) -> SyncReport:
    """A sync of ``count`` tenants as the ledger model would give it: most migrated, with
    operations, SQL, withheld changes and what still differs; every 7th unchanged (every
    14th still with a difference), every 100th failed, every 1,000th named to be escaped.
    """
    results = [_large_result(n) for n in range(count)]
    run = RunInfo(
        database="postgresql+psycopg://app:***@db.internal:5432/app",
        model="myapp.models:Base",
        model_fingerprint="3f2a9c0d1e4b5a6978877665544332211",
        versions={"tenant_sync": "0.1.0", "alembic": "1.13.2", "postgresql": "16.3"},
        options={"dry_run": False, "tenants": "tenant\\_%", "workers": 8},
    )
    return SyncReport(
        results=results, finished_at="2024-05-01T11:00:00+00:00", duration_s=61.0, run=run
    )


_OPERATIONS = [
    "add column entries.note TEXT",
    "alter column entries.memo VARCHAR(40) -> VARCHAR(80)",
    "set NOT NULL on entries.booked",
]
_SQL = [
    "ALTER TABLE entries ADD COLUMN note TEXT",
    f"COMMENT ON COLUMN entries.note IS '{NASTY_COMMENT}'",
    "ALTER TABLE entries ALTER COLUMN memo TYPE VARCHAR(80)",
    "ALTER TABLE entries ALTER COLUMN booked SET NOT NULL",
]
_WITHHELD = ["alter column entries.amount INTEGER -> BIGINT", "drop column entries.legacy"]
_DIFFERENCES = [
    f"{change} (withheld: {c})"
    for change, c in zip(_WITHHELD, ["rewrite", "destructive"], strict=True)
]


def _large_result(n: int) -> TenantResult:
    schema = f"tenant_{n:05d}" + ('_<b>"x"' if n % 1000 == 999 else "")
    if n % 7 == 0 and n % 100:
        differs = n % 14 == 0
        differences = ["primary key of entries (not changed by tenant_sync: destructive)"]
        return TenantResult(
            schema, "unchanged", attempts=0, differences=differences if differs else []
        )
    changes: dict[str, Any] = {
        "operations": _OPERATIONS,
        "sql": _SQL,
        "classes": ["safe", "safe", "data_dependent"],
        "withheld": _WITHHELD,
        "withheld_classes": ["rewrite", "destructive"],
        "differences": _DIFFERENCES,
        "duration_s": 0.02 + (n % 37) / 1000,
    }
    if n % 100 == 0:
        error = (
            "while running 'set NOT NULL on entries.booked': NotNullViolation: column"
            f' "booked" of relation "entries" contains null values ({n % 13 + 1} rows)'
        )
        return TenantResult(schema, "failed", error=error, attempts=3, **changes)
    return TenantResult(schema, "migrated", **changes)
