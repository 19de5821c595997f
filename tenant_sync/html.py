"""A :class:`~tenant_sync.report.SyncReport` as one static HTML page: no external assets.

::

    from tenant_sync.html import write_html

    write_html(report, "reports/sync.html")   # open it in any browser, even offline

The header (run summary) is rendered here, every value escaped.  The per-tenant table is
rendered in the browser from the report's JSON, embedded in a
``<script type="application/json">`` tag, with ``textContent`` only: tenant names and
errors are never parsed as HTML.  Rows are built when first shown and reused, added 250
at a time as the table is scrolled; a tenant's operations, withheld changes and SQL are
built when its row is first expanded.  So a report of 10,000 tenants opens in well
under a second.

The page reads its URL fragment on load and when it changes, e.g.
``report.html#status=failed&q=acme&sort=duration_s&dir=desc&open=tenant_acme``, and keeps
the fragment in step with the controls so a filtered view can be shared as a link.
"""

from __future__ import annotations

import json
import os
import re
from html import escape
from pathlib import Path

from .report import STATUSES, SyncReport
from .summary import format_duration

__all__ = ["render_html", "write_html"]

_SLOT = re.compile(r"__([A-Z]+)__")


def render_html(report: SyncReport) -> str:
    """Return the report as a complete, self-contained HTML page."""
    kind = "Dry run" if report.dry_run else "Sync"
    title = f"tenant_sync {kind.lower()}: {len(report.results):,} tenants"
    parts = {
        "TITLE": escape(title),
        "STYLE": _STYLE,
        "HEADER": _header(report, kind),
        "OPTIONS": _status_options(report),
        "DATA": _embedded_json(report),
        "SCRIPT": _SCRIPT,
    }
    # One pass over the template: text put in (a tenant named __SCRIPT__) is not rescanned.
    return _SLOT.sub(lambda match: parts[match.group(1)], _PAGE)


def write_html(report: SyncReport, path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_html` output to ``path`` (atomically) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(render_html(report), encoding="utf-8")
    temporary.replace(target)
    return target


def _header(report: SyncReport, kind: str) -> str:
    failed = report.counts["failed"]
    verdict = f"{failed:,} failed" if failed else "no failures"
    facts = [
        ("Run", kind),
        ("Tenants", f"{len(report.results):,}"),
        ("Started", report.started_at or "unknown"),
        ("Finished", report.finished_at or "not finished"),
        ("Duration", format_duration(report.duration_s)),
    ]
    if report.cancelled:
        facts.append(("Cancelled", "yes, before every tenant was done"))
    if report.note:
        facts.append(("Note", report.note))
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    chips = "".join(
        f'<button type="button" class="chip status-{status}" data-status="{status}">'
        f"{status} <b>{count:,}</b></button>"
        for status, count in report.counts.items()
    )
    return (
        f'<h1>{escape(kind)} report <span class="verdict {"bad" if failed else "good"}">'
        f"{escape(verdict)}</span></h1><dl>{items}</dl>"
        f'<div class="chips" aria-label="Tenants by status">{chips}</div>'
    )


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


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>__TITLE__</title>
<style>__STYLE__</style>
</head>
<body>
<header>__HEADER__</header>
<main>
<div class="controls">
<label>Status <select id="status-filter">__OPTIONS__</select></label>
<label>Search <input id="search" type="search" placeholder="schema, error or change"
 autocomplete="off"></label>
<span id="shown" aria-live="polite"></span>
</div>
<table id="tenants">
<colgroup><col class="c-schema"><col class="c-status"><col class="c-count"><col class="c-count">
<col class="c-count"><col class="c-count"><col></colgroup>
<thead><tr>
<th data-key="schema" aria-sort="none"><button type="button">Schema</button></th>
<th data-key="status" aria-sort="none"><button type="button">Status</button></th>
<th data-key="operations" aria-sort="none" class="num"><button type="button">Operations</button></th>
<th data-key="withheld" aria-sort="none" class="num"><button type="button">Withheld</button></th>
<th data-key="duration_s" aria-sort="none" class="num"><button type="button">Duration</button></th>
<th data-key="attempts" aria-sort="none" class="num"><button type="button">Attempts</button></th>
<th>Error</th>
</tr></thead>
<tbody id="tenant-rows"></tbody>
</table>
<p id="empty" hidden>No tenant matches the filter.</p>
<p id="more" hidden><button type="button"></button></p>
<noscript><p>The tenant table needs JavaScript; the report's JSON is in this page's source.</p></noscript>
</main>
<script type="application/json" id="report-data">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""

_STYLE = """
:root { color-scheme: light dark; --bg: #fff; --fg: #1f2328; --muted: #59636e;
  --line: #d1d9e0; --panel: #f6f8fa; --failed: #cf222e; --failed-bg: #ffebe9;
  --migrated: #1a7f37; --planned: #0969da; --skipped: #9a6700; --unchanged: #59636e; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --panel: #151b23;
    --failed: #ff7b72; --failed-bg: #3c1618; --migrated: #3fb950; --planned: #58a6ff;
    --skipped: #d29922; --unchanged: #9198a1; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: 16px 24px 12px; background: var(--panel); border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 8px; font-size: 20px; display: flex; gap: 12px; align-items: center; }
.verdict { font-size: 13px; padding: 2px 10px; border-radius: 999px; color: #fff; }
.verdict.good { background: var(--migrated); } .verdict.bad { background: var(--failed); }
dl { display: flex; flex-wrap: wrap; gap: 4px 28px; margin: 0; }
dt { color: var(--muted); font-size: 12px; } dd { margin: 0; font-variant-numeric: tabular-nums; }
.chips { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.chip { font: inherit; cursor: pointer; padding: 2px 12px; border-radius: 999px;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
.chip::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px;
  border-radius: 50%; background: var(--status); }
.controls { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; padding: 12px 24px; }
.controls select, .controls input { font: inherit; padding: 4px 6px; margin-left: 4px;
  border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.controls input { width: 22em; }
#shown { color: var(--muted); }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
.c-schema { width: 24%; } .c-status { width: 7.5em; } .c-count { width: 7.5em; }
th { position: sticky; top: 0; z-index: 1; background: var(--panel); text-align: left;
  border-bottom: 1px solid var(--line); padding: 0; white-space: nowrap; }
th:not([data-key]) { padding: 6px 12px; }
th button { font: inherit; font-weight: 600; color: var(--fg); background: none;
  border: 0; padding: 6px 12px; cursor: pointer; width: 100%; text-align: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: 10px; }
td { padding: 5px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th:first-child button, td:first-child { padding-left: 24px; }
th:last-child, td:last-child { padding-right: 24px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.toggle { font: inherit; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer; text-align: left; display: flex; overflow-wrap: anywhere; }
.toggle::before { content: "\\25B8"; flex: none; width: 1.1em; color: var(--muted); }
.toggle[aria-expanded="true"]::before { content: "\\25BE"; }
.badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px;
  border: 1px solid var(--status); color: var(--status); }
.status-migrated { --status: var(--migrated); } .status-unchanged { --status: var(--unchanged); }
.status-planned { --status: var(--planned); } .status-skipped { --status: var(--skipped); }
.status-failed { --status: var(--failed); }
tr.tenant.status-failed > td { background: var(--failed-bg); }
tr.tenant.status-failed > td:first-child { box-shadow: inset 4px 0 var(--failed); }
td.error { color: var(--failed); white-space: pre-wrap; overflow-wrap: anywhere;
  font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
td.error .clamp { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 4;
  line-clamp: 4; overflow: hidden; }  /* a long error is shown whole when the row is opened */
tr.tenant.status-skipped td.error { color: var(--skipped); }
tr.detail > td { background: var(--panel); padding: 4px 24px 12px 48px; }
.detail h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); margin: 8px 0 4px; }
.detail ul { margin: 0; padding-left: 18px; } .detail .none { color: var(--muted); margin: 0; }
.detail pre { margin: 0; padding: 8px 10px; max-height: 420px; overflow: auto; white-space: pre-wrap;
  background: var(--bg); border: 1px solid var(--line); border-radius: 6px;
  font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.detail pre.error { color: var(--failed); }
#empty, #more { padding: 16px 24px; color: var(--muted); }
#more button { font: inherit; padding: 4px 12px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--panel); color: var(--fg); }
"""

# Data reaches the DOM through textContent, dataset and className only, never innerHTML.
_SCRIPT = """
"use strict";
(function () {
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const results = report.results;
  const filter = document.getElementById("status-filter");
  const search = document.getElementById("search");
  const tbody = document.getElementById("tenant-rows");
  const shown = document.getElementById("shown");
  const empty = document.getElementById("empty");
  const more = document.getElementById("more");
  const headers = Array.from(document.querySelectorAll("#tenants th[data-key]"));
  const statuses = Array.from(filter.options, (option) => option.value);
  // Rows are added a chunk at a time: laying out 10,000 table rows at once takes seconds.
  const CHUNK = 250;
  const keys = new Map([
    ["schema", (r) => r.schema], ["status", (r) => r.status],
    ["operations", (r) => r.operations.length], ["withheld", (r) => r.withheld.length],
    ["duration_s", (r) => r.duration_s], ["attempts", (r) => r.attempts],
  ]);
  const state = { status: "all", q: "", sort: null, dir: "asc" };
  let picked = [];
  let limit = CHUNK;
  const open = new Set();
  const rows = new Map();
  const details = new Map();
  const bySchema = new Map(results.map((r, i) => [r.schema, i]));
  const haystacks = results.map((r) =>
    [r.schema, r.error || "", ...r.operations, ...r.withheld].join("\\n").toLowerCase());

  // "tenant_9" before "tenant_10", without a collator call per comparison.
  function natural(text) {
    return text.toLowerCase().replace(/\\d+/g, (digits) => digits.padStart(20, "0"));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function duration(s) {
    if (s < 1) return s.toFixed(3) + "s";
    if (s < 60) return s.toFixed(2) + "s";
    const m = Math.floor(Math.round(s) / 60), sec = Math.round(s) % 60;
    if (m < 60) return m + "m" + String(sec).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
  }

  function row(i) {
    let tr = rows.get(i);
    if (tr) return tr;
    const r = results[i];
    tr = el("tr", "tenant status-" + r.status);
    tr.dataset.index = i;
    tr.dataset.schema = r.schema;
    tr.dataset.status = r.status;
    const name = el("td", "schema");
    const toggle = el("button", "toggle", r.schema);
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(open.has(i)));
    name.append(toggle);
    const status = el("td");
    status.append(el("span", "badge status-" + r.status, r.status));
    const error = el("td", "error");
    if (r.error) error.append(el("div", "clamp", r.error));
    tr.append(name, status, el("td", "num", String(r.operations.length)),
      el("td", "num", String(r.withheld.length)), el("td", "num", duration(r.duration_s)),
      el("td", "num", String(r.attempts)), error);
    rows.set(i, tr);
    return tr;
  }

  function section(title, body) {
    const part = el("section");
    part.append(el("h3", "", title), body);
    return part;
  }

  function list(items) {
    if (!items.length) return el("p", "none", "none");
    const ul = el("ul");
    for (const item of items) ul.append(el("li", "", item));
    return ul;
  }

  function sql(statements) {
    if (!statements.length) return el("p", "none", "none");
    return el("pre", "sql", statements.map((s) => s.trim().endsWith(";") ? s : s + ";").join("\\n\\n"));
  }

  function detail(i) {
    let tr = details.get(i);
    if (tr) return tr;
    const r = results[i];
    tr = el("tr", "detail");
    tr.dataset.schema = r.schema;
    const td = el("td");
    td.colSpan = 7;
    if (r.error) td.append(section("Error", el("pre", "error", r.error)));
    td.append(section("Operations", list(r.operations)),
      section("Withheld destructive changes", list(r.withheld)),
      section(report.dry_run ? "SQL that would run" : "SQL run", sql(r.sql)));
    tr.append(td);
    details.set(i, tr);
    return tr;
  }

  function matching() {
    const q = state.q.trim().toLowerCase();
    const found = [];
    for (let i = 0; i < results.length; i++) {
      if (state.status !== "all" && results[i].status !== state.status) continue;
      if (q && !haystacks[i].includes(q)) continue;
      found.push(i);
    }
    if (state.sort) {
      const key = keys.get(state.sort), sign = state.dir === "desc" ? -1 : 1;
      const value = [];
      for (const i of found) {
        const v = key(results[i]);
        value[i] = typeof v === "string" ? natural(v) : v;
      }
      found.sort((a, b) => sign * (value[a] < value[b] ? -1 : value[a] > value[b] ? 1 : 0) || a - b);
    }
    return found;
  }

  function render() {
    picked = matching();
    limit = CHUNK;
    tbody.replaceChildren();
    append(0);
    empty.hidden = picked.length > 0;
    shown.textContent = "Showing " + picked.length.toLocaleString("en-US") + " of " +
      results.length.toLocaleString("en-US") + " tenants";
    for (const th of headers) {
      const sorted = th.dataset.key === state.sort;
      th.setAttribute("aria-sort", sorted ? (state.dir === "asc" ? "ascending" : "descending") : "none");
    }
  }

  function append(from) {
    const fragment = document.createDocumentFragment();
    const to = Math.min(limit, picked.length);
    for (let n = from; n < to; n++) {
      fragment.append(row(picked[n]));
      if (open.has(picked[n])) fragment.append(detail(picked[n]));
    }
    tbody.append(fragment);
    const left = picked.length - to;
    more.hidden = left <= 0;
    more.firstChild.textContent = "Show " + Math.min(CHUNK, left).toLocaleString("en-US") +
      " more (" + left.toLocaleString("en-US") + " not shown yet)";
  }

  function showMore() {
    if (limit >= picked.length) return;
    limit += CHUNK;
    append(limit - CHUNK);
  }

  function toggle(i) {
    const expanded = !open.has(i);
    if (expanded) open.add(i); else open.delete(i);
    const tr = row(i);
    tr.querySelector(".toggle").setAttribute("aria-expanded", String(expanded));
    if (expanded && tr.isConnected) tr.after(detail(i));
    if (!expanded) detail(i).remove();
  }

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const status = params.get("status");
    state.status = statuses.includes(status) ? status : "all";
    state.q = params.get("q") || "";
    state.sort = keys.has(params.get("sort")) ? params.get("sort") : null;
    state.dir = params.get("dir") === "desc" ? "desc" : "asc";
    for (const schema of params.getAll("open")) {
      const i = bySchema.get(schema);
      if (i !== undefined && !open.has(i)) toggle(i);
    }
    filter.value = state.status;
    search.value = state.q;
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.status !== "all") params.set("status", state.status);
    if (state.q) params.set("q", state.q);
    if (state.sort) { params.set("sort", state.sort); params.set("dir", state.dir); }
    const hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (error) { /* some browsers refuse history changes on file:// pages */ }
  }

  function update(change) {
    Object.assign(state, change);
    filter.value = state.status;
    writeHash();
    render();
  }

  function sortBy(key, dir) {
    const numeric = key !== "schema" && key !== "status";
    if (!dir) dir = state.sort === key ? (state.dir === "asc" ? "desc" : "asc") : (numeric ? "desc" : "asc");
    update({ sort: key, dir: dir });
  }

  let typing = null;
  filter.addEventListener("change", () => update({ status: filter.value }));
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => update({ q: search.value }), results.length > 2000 ? 150 : 0);
  });
  for (const th of headers) th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.key));
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => update({ status: state.status === chip.dataset.status ? "all" : chip.dataset.status }));
  }
  tbody.addEventListener("click", (event) => {
    const button = event.target.closest("button.toggle");
    if (button) toggle(Number(button.closest("tr").dataset.index));
  });
  window.addEventListener("hashchange", () => { readHash(); render(); });
  more.firstChild.addEventListener("click", showMore);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) showMore(); },
      { rootMargin: "800px" }).observe(more);
  }

  const started = performance.now();
  readHash();
  render();
  // A small handle for scripts and tests driving the page.
  window.tenantReport = {
    renderMs: performance.now() - started,
    setStatus: (status) => update({ status: statuses.includes(status) ? status : "all" }),
    setSearch: (q) => { search.value = q; update({ q: q }); },
    sortBy: sortBy,
    toggle: (schema) => { const i = bySchema.get(schema); if (i !== undefined) toggle(i); },
    visible: () => Array.from(tbody.querySelectorAll("tr.tenant"), (tr) => tr.dataset.schema),
    matching: () => picked.map((i) => results[i].schema),
    showMore: showMore,
  };
})();
"""
