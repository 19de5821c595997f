// The tenant table of the HTML report, rendered from the report's JSON (see html.py).
// Data reaches the DOM through textContent, dataset and className only, never innerHTML.
"use strict";
(function () {
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const results = report.results;
  // In a fleet's report a tenant is named with its database: "eu/tenant_acme".
  const nameOf = (r) => (r.database ? r.database + "/" + r.schema : r.schema);
  const filter = document.getElementById("status-filter");
  const differsFilter = document.getElementById("differs-filter");
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
    ["schema", nameOf], ["status", (r) => r.status],
    ["operations", (r) => r.operations.length], ["withheld", (r) => r.withheld.length],
    ["differences", (r) => (r.differences || []).length],
    ["duration_s", (r) => r.duration_s], ["attempts", (r) => r.attempts],
  ]);
  // The change classes, least risky first (tenant_sync.classes.CHANGE_CLASSES).
  const CLASSES = ["safe", "data_dependent", "rewrite", "destructive"];
  const state = { status: "all", differs: false, q: "", sort: null, dir: "asc" };
  let picked = [];
  let limit = CHUNK;
  const open = new Set();
  const rows = new Map();
  const details = new Map();
  const bySchema = new Map(results.map((r, i) => [nameOf(r), i]));
  const haystacks = results.map((r) =>
    [nameOf(r), r.error || "", ...r.operations, ...r.withheld, ...(r.differences || []),
      ...(r.steps || []), ...(r.online || []),
      ...(r.classes || []), ...(r.withheld_classes || [])].join("\n").toLowerCase());

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

  // A tag per class, in CLASSES order, with its count when more than one: "safe ×2".
  function classTags(classes) {
    const counts = new Map();
    for (const c of classes || []) counts.set(c, (counts.get(c) || 0) + 1);
    const known = CLASSES.filter((c) => counts.has(c));
    const other = Array.from(counts.keys()).filter((c) => !CLASSES.includes(c)).sort();
    const tags = el("span", "tags");
    for (const c of known.concat(other)) {
      const n = counts.get(c);
      tags.append(tag(c, n > 1 ? c + " \u00d7" + n : c));
    }
    return tags;
  }

  function tag(changeClass, text) {
    const known = CLASSES.includes(changeClass) ? changeClass : "other";
    return el("span", "cls cls-" + known, text);
  }

  function counted(count, classes) {
    const td = el("td", "num");
    const box = el("div", "changes");
    box.append(el("span", "count", String(count)), classTags(classes));
    td.append(box);
    return td;
  }

  function row(i) {
    let tr = rows.get(i);
    if (tr) return tr;
    const r = results[i];
    tr = el("tr", "tenant status-" + r.status);
    tr.dataset.index = i;
    tr.dataset.schema = nameOf(r);
    tr.dataset.status = r.status;
    const name = el("td", "schema");
    const toggle = el("button", "toggle", nameOf(r));
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(open.has(i)));
    name.append(toggle);
    const status = el("td");
    status.append(el("span", "badge status-" + r.status, r.status));
    const error = el("td", "error");
    if (r.error) error.append(el("div", "clamp", r.error));
    const differs = (r.differences || []).length;
    const drift = el("td", "num differs" + (differs ? " some" : ""), String(differs));
    if (differs) {
      drift.title = r.differences.join("\n");
      tr.classList.add("drifted");
    }
    tr.append(name, status, counted(r.operations.length, r.classes),
      counted(r.withheld.length, r.withheld_classes), drift,
      el("td", "num", duration(r.duration_s)), el("td", "num", String(r.attempts)), error);
    rows.set(i, tr);
    return tr;
  }

  function section(title, body) {
    const part = el("section");
    part.append(el("h3", "", title), body);
    return part;
  }

  // Items, each after its class tag when ``classes`` are given.
  function list(items, classes) {
    if (!items.length) return el("p", "none", "none");
    const ul = el("ul");
    items.forEach((item, k) => {
      const li = el("li");
      if (classes && classes[k]) li.append(tag(classes[k], classes[k]), " ");
      li.append(item);
      ul.append(li);
    });
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
    tr.dataset.schema = nameOf(r);
    const td = el("td");
    td.colSpan = 8;
    if (r.error) td.append(section("Error", el("pre", "error", r.error)));
    td.append(section("Operations", list(r.operations, r.classes)),
      section("Still differs from the model", list(r.differences || [])),
      section("Withheld (class not allowed)", list(r.withheld, r.withheld_classes)),
      section(report.dry_run ? "SQL that would run" : "SQL run", sql(r.sql)));
    if (r.accepted && r.accepted.length) td.append(section("Accepted", list(r.accepted)));
    if (r.steps && r.steps.length) {
      td.append(section(report.dry_run ? "Data steps that would run" : "Data steps run",
        list(r.steps)));
    }
    if (r.online && r.online.length) {
      td.append(section("Online steps, after the tenant's transaction", list(r.online)));
    }
    tr.append(td);
    details.set(i, tr);
    return tr;
  }

  function matching() {
    const q = state.q.trim().toLowerCase();
    const found = [];
    for (let i = 0; i < results.length; i++) {
      if (state.status !== "all" && results[i].status !== state.status) continue;
      if (state.differs && !(results[i].differences || []).length) continue;
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
    state.differs = params.get("differs") === "1";
    state.q = params.get("q") || "";
    state.sort = keys.has(params.get("sort")) ? params.get("sort") : null;
    state.dir = params.get("dir") === "desc" ? "desc" : "asc";
    for (const schema of params.getAll("open")) {
      const i = bySchema.get(schema);
      if (i !== undefined && !open.has(i)) toggle(i);
    }
    filter.value = state.status;
    differsFilter.checked = state.differs;
    search.value = state.q;
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.status !== "all") params.set("status", state.status);
    if (state.differs) params.set("differs", "1");
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
    differsFilter.checked = state.differs;
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
  differsFilter.addEventListener("change", () => update({ differs: differsFilter.checked }));
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
    // Since the navigation started (performance.now()'s origin): the table is up, and live.
    readyMs: performance.now(),
    setStatus: (status) => update({ status: statuses.includes(status) ? status : "all" }),
    setDiffers: (on) => update({ differs: Boolean(on) }),
    setSearch: (q) => { search.value = q; update({ q: q }); },
    sortBy: sortBy,
    toggle: (schema) => { const i = bySchema.get(schema); if (i !== undefined) toggle(i); },
    visible: () => Array.from(tbody.querySelectorAll("tr.tenant"), (tr) => tr.dataset.schema),
    matching: () => picked.map((i) => nameOf(results[i])),
    showMore: showMore,
  };
})();
