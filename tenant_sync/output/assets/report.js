// The tenant table of the HTML report, rendered from the report's JSON (see html.py).
// Data reaches the DOM through textContent, dataset and className only, never innerHTML.
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
    [r.schema, r.error || "", ...r.operations, ...r.withheld].join("\n").toLowerCase());

  // "tenant_9" before "tenant_10", without a collator call per comparison.
  function natural(text) {
    return text.toLowerCase().replace(/\d+/g, (digits) => digits.padStart(20, "0"));
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
    return el("pre", "sql", statements.map((s) => s.trim().endsWith(";") ? s : s + ";").join("\n\n"));
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
    const classed = (items, classes) =>
      items.map((item, k) => (classes && classes[k] ? item + " [" + classes[k] + "]" : item));
    td.append(section("Operations", list(classed(r.operations, r.classes))),
      section("Still differs from the model", list(r.differences || [])),
      section("Withheld (class not allowed)", list(classed(r.withheld, r.withheld_classes))),
      section(report.dry_run ? "SQL that would run" : "SQL run", sql(r.sql)));
    if (r.accepted && r.accepted.length) td.append(section("Accepted", list(r.accepted)));
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
