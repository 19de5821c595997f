"""Report formats: JSON, the terminal summary and the static HTML page (in headless Chromium).

No database here: the reports are built directly from TenantResult objects.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import DevTools, dump_dom, find_chromium, screenshot

from tenant_sync.output.html import render_html, write_html
from tenant_sync.output.summary import format_summary, withheld_counts
from tenant_sync.report import REPORT_FORMAT_VERSION, SyncReport, TenantResult

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

# A name and an error that would break a page that pasted them into HTML or a script.
NASTY_SCHEMA = 'tenant_"quoted"_<b>&amp;'
NASTY_ERROR = "relation \"projects\" </script><script>alert('x')</script> & <!-- oops"


def sample_report() -> SyncReport:
    """A finished run with every status, two failures and withheld changes."""
    return SyncReport(
        results=[
            TenantResult(
                "tenant_alpha",
                "migrated",
                operations=["add column projects.description TEXT"],
                sql=["ALTER TABLE projects ADD COLUMN description TEXT"],
                withheld=["drop column projects.legacy"],
                differences=["drop column projects.legacy (withheld: destructive)"],
                duration_s=0.42,
            ),
            TenantResult("tenant_beta", "unchanged", duration_s=0.05),
            TenantResult(
                "tenant_gamma",
                "failed",
                operations=["add column projects.description TEXT"],
                error="lock timeout on projects: another session holds it; retry later",
                duration_s=7.5,
                attempts=3,
            ),
            TenantResult(
                NASTY_SCHEMA,
                "failed",
                error=NASTY_ERROR,
                withheld=["drop column projects.legacy", "drop table old_logs"],
                differences=[
                    "drop column projects.legacy (withheld: destructive)",
                    "drop table old_logs (withheld: destructive)",
                ],
                duration_s=1.25,
            ),
            TenantResult("tenant_delta", "skipped", error="cancelled before start"),
            TenantResult(
                "tenant_epsilon",
                "migrated",
                operations=[
                    "create table invoices",
                    "create index ix_invoices_due on invoices (due)",
                ],
                sql=["CREATE TABLE invoices (id SERIAL NOT NULL)", "CREATE INDEX ix_invoices_due"],
                withheld=["drop column projects.legacy"],
                accepted=["drop column projects.legacy"],
                duration_s=3.1,
            ),
        ],
        started_at="2024-05-01T10:00:00+00:00",
        finished_at="2024-05-01T10:00:12+00:00",
        duration_s=12.3,
    )


def many_tenants(count: int, failed_every: int) -> SyncReport:
    """A large report: every ``failed_every``-th tenant failed, the rest migrated."""
    results = [
        TenantResult(f"tenant_{n:05d}", "failed", error=f"error number {n}", duration_s=n / 1000)
        if n % failed_every == 0
        else TenantResult(
            f"tenant_{n:05d}",
            "migrated",
            operations=["add column projects.description TEXT"],
            sql=["ALTER TABLE projects ADD COLUMN description TEXT"],
            withheld=["drop column projects.legacy"],
            duration_s=n / 1000,
        )
        for n in range(count)
    ]
    return SyncReport(results=results, finished_at="2024-05-01T11:00:00+00:00", duration_s=61.0)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed when missing (as root), else the browser tests skip."""
    return find_chromium()


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    """The sample report written as an HTML file."""
    return write_html(sample_report(), tmp_path / "report.html")


# --- JSON ---------------------------------------------------------------------------------


def test_json_carries_the_format_version_and_reads_back() -> None:
    report = sample_report()
    data = json.loads(report.to_json())
    assert data["format_version"] == REPORT_FORMAT_VERSION
    assert data["counts"]["failed"] == 2
    assert SyncReport.from_dict(data) == report


def test_json_of_an_unknown_format_version_is_refused() -> None:
    data = {**sample_report().to_dict(), "format_version": REPORT_FORMAT_VERSION + 1}
    with pytest.raises(ValueError, match="format version"):
        SyncReport.from_dict(data)


# --- terminal summary ---------------------------------------------------------------------


def test_summary_counts_tenants_by_status_with_the_run_time() -> None:
    text = format_summary(sample_report())
    assert text.startswith("Sync of 6 tenants in 12.30s")
    counts = dict(re.findall(r"^  (\w+) +(\d+)$", text, re.MULTILINE))
    assert counts == {
        "migrated": "2",
        "partial": "0",
        "unchanged": "1",
        "planned": "0",
        "failed": "2",
        "skipped": "1",
    }


def test_summary_says_dry_run_and_cancelled() -> None:
    report = sample_report()
    report.dry_run, report.cancelled = True, True
    text = format_summary(report)
    assert text.startswith("Dry run of 6 tenants")
    assert "cancelled" in text.splitlines()[1]


def test_summary_lists_the_slowest_tenants_slowest_first() -> None:
    text = format_summary(sample_report(), slowest=2)
    section = _section(text, "Slowest tenants")
    assert [line.split()[0] for line in section] == ["tenant_gamma", "tenant_epsilon"]
    assert "7.50s" in section[0] and "(3 attempts)" in section[0]


def test_summary_lists_every_failed_tenant_with_its_error() -> None:
    report = many_tenants(200, failed_every=10)
    text = format_summary(report, slowest=3)
    section = _section(text, "Failed tenants (20)")
    assert len(section) == 20
    for result in report.failed():
        assert f"  {result.schema}: {result.error}" in section


def test_summary_names_the_first_skipped_tenants_with_the_reason() -> None:
    skipped = [TenantResult(f"t{n:02d}", "skipped", error="run cancelled") for n in range(12)]
    report = SyncReport(results=[TenantResult("analytics", "skipped", error="no tenant"), *skipped])
    section = format_summary(report).split("Skipped tenants (13)\n")[1].splitlines()
    assert section[:2] == ["  analytics: no tenant", "  t00: run cancelled"]
    assert section[9:] == ["  t08: run cancelled", "  ... and 3 more"]


def test_summary_shows_multi_line_errors_indented() -> None:
    report = SyncReport(results=[TenantResult("t1", "failed", error="first line\nsecond line")])
    assert "  t1: first line\n      second line" in format_summary(report)


def test_summary_groups_differences_with_tenant_counts_and_counts_accepted_ones() -> None:
    text = format_summary(sample_report())
    assert _section(text, "Still differs from the model") == [
        "  drop column projects.legacy (withheld: destructive) — 2 tenants",
        "  drop table old_logs (withheld: destructive) — 1 tenant",
    ]
    assert _section(text, "Accepted differences") == ["  drop column projects.legacy — 1 tenant"]
    counts = withheld_counts(many_tenants(134, failed_every=10).results)
    assert counts == [("drop column projects.legacy", 120)]


def test_summary_is_plain_text_unless_colour_is_asked_for() -> None:
    assert "\x1b[" not in format_summary(sample_report())
    assert "\x1b[31;1m" in format_summary(sample_report(), color=True)


def test_summary_neutralises_control_characters_from_the_database() -> None:
    report = SyncReport(results=[TenantResult("t\x1b[2J", "failed", error="bad\x07")])
    text = format_summary(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "t\\x1b[2J: bad\\x07" in text


def test_summary_of_an_empty_run() -> None:
    text = format_summary(SyncReport())
    assert text.startswith("Sync of 0 tenants")
    assert "Failed" not in text and "Slowest" not in text and "Withheld" not in text


# --- HTML, as text ------------------------------------------------------------------------


def test_html_is_a_single_file_without_external_assets() -> None:
    page = render_html(sample_report())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?i)https?://|//[a-z]|<link|\ssrc=|@import|url\(", page)
    assert "default-src 'none'" in page  # the browser itself refuses any request


def test_html_escapes_tenant_data_and_embeds_it_as_json() -> None:
    report = sample_report()
    page = render_html(report)
    assert "</script><script>alert" not in page
    assert NASTY_SCHEMA not in page and "<!-- oops" not in page
    embedded = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert embedded is not None
    assert json.loads(embedded.group(1)) == json.loads(report.to_json())


def test_html_header_summarises_the_run() -> None:
    report = sample_report()
    report.dry_run, report.note = True, 'note with <tags> & "quotes"'
    page = render_html(report)
    header = page[page.index("<header>") : page.index("</header>")]
    for text in (
        "Dry run report",
        "2 failed",
        "2024-05-01T10:00:00+00:00",
        "12.30s",
        "&lt;tags&gt; &amp;",
    ):
        assert text in header
    assert 'data-status="failed">failed <b>2</b>' in header


def test_html_lists_each_change_set_once_with_its_tenants() -> None:
    page = render_html(sample_report())
    section = page[page.index('<section class="change-sets">') : page.index("</section>")]
    summaries = re.findall(r"<summary>(.*?)</summary>", section)
    assert len(summaries) == 4  # alpha, gamma, the nasty one, epsilon: each its own set
    assert "Change set 1: 1 tenant (tenant_alpha)" in summaries
    assert html.escape(NASTY_SCHEMA) in section and NASTY_SCHEMA not in section
    assert "still differs</span> drop table old_logs (withheld: destructive)" in section
    assert "failed</span> 1 of 1 tenant" in section


def test_write_html_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "report.html"
    target.parent.mkdir()
    target.write_text("old")
    assert write_html(sample_report(), target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in target.parent.iterdir()] == ["report.html"]


# --- HTML, in headless Chromium -----------------------------------------------------------


def test_html_fragment_filter_shows_only_failed_tenants(
    chromium: str, report_file: Path, tmp_path: Path
) -> None:
    dom = dump_dom(chromium, report_file.as_uri() + "#status=failed", tmp_path / "profile")
    rows = _table_rows(dom)
    assert {row["schema"] for row in rows} == {"tenant_gamma", NASTY_SCHEMA}
    assert {row["status"] for row in rows} == {"failed"}
    errors = {row["schema"]: row["text"] for row in rows}
    assert NASTY_ERROR in errors[NASTY_SCHEMA]
    assert "lock timeout on projects" in errors["tenant_gamma"]
    assert "Showing 2 of 6 tenants" in dom


def test_html_screenshot_of_the_failed_tenants(
    chromium: str, report_file: Path, tmp_path: Path
) -> None:
    url = report_file.as_uri() + "#status=failed&open=tenant_gamma"
    png = screenshot(chromium, url, ARTIFACTS / "report-failed.png", tmp_path / "profile")
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_controls_in_a_live_page(chromium: str, report_file: Path, tmp_path: Path) -> None:
    with DevTools(chromium, tmp_path / "profile") as page:
        page.open(report_file.as_uri())
        assert len(page.evaluate("tenantReport.visible()")) == 6
        assert page.evaluate("performance.getEntriesByType('resource').length") == 0

        page.select_option("#status-filter", "failed")
        assert page.evaluate("tenantReport.visible()") == ["tenant_gamma", NASTY_SCHEMA]
        assert page.evaluate("location.hash") == "#status=failed"
        error_cell = "document.querySelector('tr.tenant[data-status=failed] td.error')"
        assert page.evaluate(f"{error_cell}.checkVisibility()")
        assert "lock timeout on projects" in page.evaluate(f"{error_cell}.innerText")

        page.click("#tenants th[data-key=duration_s] button")
        assert page.evaluate("tenantReport.visible()") == ["tenant_gamma", NASTY_SCHEMA]
        page.click("#tenants th[data-key=duration_s] button")
        assert page.evaluate("tenantReport.visible()") == [NASTY_SCHEMA, "tenant_gamma"]
        assert page.evaluate("document.querySelector('th[data-key=duration_s]').ariaSort") == (
            "ascending"
        )

        page.click("tr.tenant[data-schema=tenant_gamma] button.toggle")
        details = "document.querySelector('tr.detail[data-schema=tenant_gamma]')"
        assert page.wait_for(f"{details} && {details}.checkVisibility()")
        assert "add column projects.description TEXT" in page.evaluate(f"{details}.innerText")

        page.select_option("#status-filter", "all")
        page.type_text("#search", "EPSILON")
        assert page.wait_for("tenantReport.visible().length === 1 && tenantReport.visible()") == [
            "tenant_epsilon"
        ]
        page.click("tr.tenant[data-schema=tenant_epsilon] button.toggle")
        sql = "document.querySelector('tr.detail[data-schema=tenant_epsilon] pre.sql').innerText"
        assert page.evaluate(sql).startswith("CREATE TABLE invoices (id SERIAL NOT NULL);")

        page.evaluate("location.hash = 'sort=duration_s&dir=desc'")
        order = ["tenant_gamma", "tenant_epsilon"]
        assert (
            page.wait_for("tenantReport.visible().length === 6 && tenantReport.visible()")[:2]
            == order
        )
        assert page.evaluate("document.getElementById('search').value") == ""
        png = page.screenshot(ARTIFACTS / "report-live.png")
    assert png.stat().st_size > 10_000


def test_html_with_ten_thousand_tenants_pages_in_rows_and_filters(
    chromium: str, tmp_path: Path
) -> None:
    # How fast it opens is measured and printed in tests/test_html_report.py, not asserted.
    report_file = write_html(many_tenants(10_000, failed_every=100), tmp_path / "big.html")
    rows = "document.querySelectorAll('tr.tenant').length"
    with DevTools(chromium, tmp_path / "profile") as page:
        page.open(report_file.as_uri())
        assert "Showing 10,000 of 10,000 tenants" in page.evaluate("document.body.innerText")
        assert page.evaluate(rows) == 250  # the rest come as the table is scrolled
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        shown = page.wait_for(f"{rows} >= 500 && {rows}")
        page.click("#more button")  # scrolling to the button may also load a chunk
        page.wait_for(f"{rows} >= {shown + 250}")

        page.select_option("#status-filter", "failed")
        assert page.evaluate(rows) == 100
        assert page.evaluate("document.getElementById('more').hidden")
        page.click("#tenants th[data-key=duration_s] button")
        assert page.evaluate("tenantReport.visible()[0]") == "tenant_09900"
        page.click("#tenants th[data-key=schema] button")
        assert page.evaluate("tenantReport.visible().slice(0, 2)") == [
            "tenant_00000",
            "tenant_00100",
        ]

        page.select_option("#status-filter", "all")
        page.type_text("#search", "error number 4")
        assert page.wait_for("tenantReport.matching().length === 11 && tenantReport.matching()")[
            :2
        ] == [
            "tenant_00400",
            "tenant_04000",
        ]


# --- helpers ------------------------------------------------------------------------------


def _section(text: str, heading: str) -> list[str]:
    """The lines under the section whose first line starts with ``heading``."""
    for block in text.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith(heading):
            return lines[1:]
    raise AssertionError(f"no section {heading!r} in:\n{text}")


class _RowParser(HTMLParser):
    """Collects the tenant rows of a dumped page: schema, status and all their text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._row: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "tr" and "tenant" in values.get("class", "").split():
            self._row = {
                "schema": values["data-schema"],
                "status": values["data-status"],
                "text": "",
            }

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data


def _table_rows(dom: str) -> list[dict[str, str]]:
    parser = _RowParser()
    parser.feed(dom)
    return parser.rows


def test_a_report_written_to_a_pipe_leaves_the_pipe_in_place(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()))
    reader.start()
    SyncReport([TenantResult("tenant_a", "unchanged")]).write(pipe)
    reader.join(timeout=30)

    assert stat.S_ISFIFO(pipe.stat().st_mode), "not replaced by a regular file"
    assert SyncReport.from_dict(json.loads(received[0])).results[0].schema == "tenant_a"
