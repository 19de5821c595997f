"""Benchmark tenant_sync against the plain per-tenant Alembic loop and the raw-DDL floor.

::

    python bench/run.py --tenants 100 1000 --scenarios build change noop drift \\
        --repeat 3 --workers 4 --out bench/results/run.json

For each tenant count N, in a database of its own (``bench_n<N>``, dropped at the
end): N tenant schemas, and per scenario three ways of doing the same work, each
timed in a process of its own (forked) from the same starting state:

(a) the plain loop a user writes (serial), (b) tenant_sync with its defaults,
(c) the raw DDL as plain SQL, serial and on ``--workers`` threads.

Scenarios: ``build`` (empty schemas -> v1), ``change`` (v1 -> v2: 5 columns, 1 index,
1 table), ``noop`` (all at v2), ``drift`` (all at v2 but 1 % of the tenants, which
lost a v2 column and the v2 index).  The JSON and a markdown table beside it are
written to ``--out``; the table is also printed.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import model
from bench.code import ROOT, pin_tenant_sync
from bench.measure import measure_in_child
from bench.report import machine_info, ratios, render_markdown, summarize
from bench.state import (
    Server,
    catalog_digests,
    create_schemas,
    run_per_tenant,
    server_url,
    tenant_names,
)

SCENARIOS = ("build", "change", "noop", "drift")
VARIANTS = ("plain", "tenant_sync", "floor_serial", "floor_parallel")
#: The template each scenario starts from, and the model version it ends at.
_START = {"build": "empty", "change": "v1", "noop": "v2", "drift": "v2"}
_END = {"build": "v1", "change": "v2", "noop": "v2", "drift": "v2"}
#: From this many tenants on, a CHECKPOINT follows each reset.  It is server-wide, so
#: below that (the CI smoke run) it would cost more, in others' writes, than it saves.
CHECKPOINT_MIN_TENANTS = 100
#: Every table name of the model (v2 is a superset of v1): what the catalog check covers.
_MODEL_TABLES = sorted(model.model_v2().tables)


class BenchError(Exception):
    """A set-up step failed; the benchmark cannot go on."""


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class TenantCount:
    """One N: its templates, its working database, its scenarios."""

    def __init__(
        self,
        server: Server,
        args: argparse.Namespace,
        count: int,
        repeat: int,
        sample: int,
        db: str,
        code_dir: Path,
    ) -> None:
        self.server = server
        self.repeat = repeat
        self.sample = sample
        self.code_dir = code_dir
        self.args = args
        self.count = count
        self.tenants = tenant_names(count)
        self.db = db
        self.url = server.database(db)
        self.templates: dict[str, str] = {}
        self.reference: dict[str, str] = {}
        self.setup: dict[str, Any] = {}
        self.checkpointed = False

    # -- set-up ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Make the templates the scenarios start from, and the reference digests."""
        needed = {_START[s] for s in self.args.scenarios}
        if needed & {"v2"}:
            needed.add("v1")
        self._reference()
        started = time.monotonic()
        empty = self._template("empty")
        self.server.create(empty)
        create_schemas(self.server.database(empty), self.tenants)
        self.setup["empty_s"] = round(time.monotonic() - started, 2)
        # v1 and v2 are made by tenant_sync itself, as in real life: the tenants then
        # carry its version table, and v2's columns come after v1's.
        previous = empty
        for version, scenario in (("v1", "build"), ("v2", "change")):
            if version not in needed:
                continue
            started = time.monotonic()
            name = self._template(version)
            self.server.copy(previous, name)
            result = measure_in_child(
                self._spec("tenant_sync", scenario, self.server.database(name)), self.code_dir
            )
            if "error" in result or result.get("first_error"):
                raise BenchError(f"building template {version} failed: {result}")
            self.setup["tenant_sync_imported_from"] = result["tenant_sync_file"]
            self._verify(self.server.database(name), self.tenants, version, strict=True)
            self.setup[f"{version}_s"] = round(time.monotonic() - started, 2)
            previous = name
        _log(f"N={self.count}: templates ready {self.setup}")

    def _template(self, label: str) -> str:
        self.templates[label] = f"{self.db}_{label}"
        return self.templates[label]

    def _reference(self) -> None:
        # In the working database, which every measurement replaces with a template.
        self.server.drop(self.db)
        self.server.create(self.db)
        url = self.url
        for version, metadata in (("v1", model.model_v1()), ("v2", model.model_v2())):
            schema = f"ref_{version}"
            create_schemas(url, [schema])
            run_per_tenant(url, [schema], model.build_ddl(metadata))
            digest = catalog_digests(url, [schema], _MODEL_TABLES)
            self.reference[version] = digest[schema]

    def _verify(self, url: Any, tenants: list[str], version: str, strict: bool = False) -> bool:
        started = time.perf_counter()
        digests = catalog_digests(url, tenants, _MODEL_TABLES)
        if strict:
            # The check is itself a single-pass catalog fingerprint of every tenant:
            # its time says what such a query costs at this N.
            self.setup[f"catalog_digest_query_{version}_s"] = round(
                time.perf_counter() - started, 2
            )
        wrong = [t for t in tenants if digests.get(t) != self.reference[version]]
        if wrong:
            message = (
                f"{len(wrong)} of {len(tenants)} tenants differ from {version}, e.g. {wrong[0]}"
            )
            if strict:
                raise BenchError(message)
            _log(f"  catalog check FAILED: {message}")
        return not wrong

    def cleanup(self, keep_working_db: bool) -> None:
        """Drop the templates, and the working database unless it was given."""
        for name in self.templates.values():
            self.server.drop(name)
        if not keep_working_db:
            self.server.drop(self.db)

    # -- measurements ---------------------------------------------------------------

    def _spec(
        self, variant: str, scenario: str, url: Any, tenants: list[str] | None = None
    ) -> dict[str, Any]:
        kind = "floor" if variant.startswith("floor") else variant
        workers = self.args.workers if variant in ("floor_parallel", "tenant_sync") else 1
        return {
            "variant": kind,
            "url": url.render_as_string(hide_password=False),
            "scenario": scenario,
            "tenants": tenants if tenants is not None else self.tenants,
            "workers": workers,
        }

    def _reset(self, scenario: str, first: bool) -> None:
        # noop and drift leave the DDL state as they found it (drift is re-applied).
        if first or scenario in ("build", "change"):
            self.server.copy(self.templates[_START[scenario]], self.db)
        if scenario == "drift":
            run_per_tenant(self.url, model.DRIFT.drifted(self.tenants), model.DRIFT.damage)
        if self.count >= CHECKPOINT_MIN_TENANTS:
            self.checkpointed = self.server.checkpoint()

    def run_scenario(self, scenario: str) -> dict[str, Any]:
        """Every variant of one scenario, ``--repeat`` times; their medians and ratios."""
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in self.args.variants}
        first = True
        for repeat in range(self.repeat):
            for variant in self.args.variants:
                self._reset(scenario, first)
                first = False
                tenants = self.tenants
                if variant == "plain" and 0 < self.sample < self.count:
                    tenants = self.tenants[: self.sample]
                load = os.getloadavg()[0]
                result = measure_in_child(
                    self._spec(variant, scenario, self.url, tenants), self.code_dir
                )
                result["loadavg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
                result["checkpoint_before"] = self.checkpointed
                result["measured_tenants"] = len(tenants)
                result["workers"] = self._spec(variant, scenario, self.url)["workers"]
                if "error" not in result:
                    result["verified"] = self._verify(self.url, tenants, _END[scenario])
                    if variant == "tenant_sync" and result["tenants_seen"] != self.count:
                        result["verified"] = False
                runs[variant].append(result)
                shown = f"{result['seconds']:.2f}s" if "seconds" in result else result["error"]
                _log(
                    f"N={self.count} {scenario} {repeat + 1}/{self.repeat} {variant}"
                    f" ({len(tenants)} tenants): {shown}, load {result['loadavg_1m']}"
                )
        variants = {v: summarize(r, self.count) for v, r in runs.items()}
        return {
            "tenants": self.count,
            "scenario": scenario,
            "repeat": self.repeat,
            "variants": variants,
            "ratios": ratios(variants),
        }


def _notes(doc: dict[str, Any], args: argparse.Namespace) -> list[str]:
    notes = []
    if any(
        variant.get("extrapolated")
        for entry in doc["results"]
        for variant in entry["variants"].values()
    ):
        notes.append(
            "\\* extrapolated: (a) was timed on the first K tenants only (K = "
            + ", ".join(
                f"{k} of {n}"
                for n, k in zip(args.tenants, args.baseline_sample, strict=True)
                if 0 < k < n
            )
            + "; 1 % of them drifted, as in the whole) and scaled to N; its memory is the "
            "sample's."
        )
    if any(
        not variant.get("verified", True)
        for entry in doc["results"]
        for variant in entry["variants"].values()
    ):
        notes.append("(!) the catalog check after the run found tenants not at the target model.")
    notes += [
        "Scenarios: build = N empty schemas -> v1 (20 tables, 129 columns, 3 enum types, "
        "25 foreign keys, 9 secondary indexes: 32 statements); "
        "change = v1 -> v2 (5 nullable columns on 5 tables, 1 index, 1 table with its index); "
        "noop = all tenants at v2; drift = all at v2 but 1 % of the tenants, which lost a v2 "
        "column and the v2 index. Starting states are made by tenant_sync itself, so tenants "
        "carry its version table.",
        "(a) plain loop: serial; per tenant engine.begin(), SET LOCAL search_path, "
        "MigrationContext.configure, produce_migrations, Operations.invoke per operation; the same "
        "comparison options as tenant_sync (compare_type, compare_server_default) and an "
        "include_name that skips the bookkeeping tables.",
        f"(b) tenant_sync: TenantSync(url, metadata).sync_all() with all defaults ({args.workers} "
        "workers; it discovers the tenants itself).",
        "(c) raw-DDL floor: the same DDL as plain SQL over psycopg, one round trip and one "
        "transaction per tenant; serial on one connection, and parallel on as many threads "
        "and connections as tenant_sync has workers. For noop it is an empty transaction per "
        "tenant; for drift it repairs just the drifted tenants (it knows which, nothing real can).",
        "Untimed between runs: the reset (a copy of a template database, or drift's damage) "
        "and a CHECKPOINT, so that the copy's writes don't land in the measurement. Other "
        "sessions on the server (tests that create and drop databases, which forces "
        "checkpoints) are not under the benchmark's control.",
        "After each run one catalog query checks every tenant's columns, constraints, indexes "
        "and enum types against a reference schema built from the raw DDL.",
        f"The machine has {doc['machine']['cores']} cores shared by the client and the server; "
        "other work on it shows in the load averages above.",
    ]
    return notes


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[100], metavar="N")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--repeat",
        type=int,
        nargs="+",
        default=[3],
        metavar="R",
        help="runs per measurement (median taken); one value, or one per --tenants value",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="tenant_sync workers and floor threads"
    )
    parser.add_argument(
        "--baseline-sample",
        type=int,
        nargs="+",
        default=[0],
        metavar="K",
        help="time the plain loop on K tenants only and extrapolate to N (0: all); "
        "one value, or one per --tenants value",
    )
    parser.add_argument(
        "--database-url",
        help="the working database (kept at the end); by default bench_n<N> on "
        "TENANT_SYNC_BENCH_URL's server, dropped at the end",
    )
    parser.add_argument(
        "--tenant-sync-ref",
        metavar="REV",
        help="measure tenant_sync as of this git revision (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only re-write the markdown beside a results JSON (after a format change)",
    )
    args = parser.parse_args(argv)
    for option in ("repeat", "baseline_sample"):
        values = getattr(args, option)
        if len(values) == 1:
            setattr(args, option, values * len(args.tenants))
        elif len(values) != len(args.tenants):
            parser.error(
                f"--{option.replace('_', '-')} takes one value, or one per --tenants value"
            )
    return args


def _run_counts(
    args: argparse.Namespace, server: Server, doc: dict[str, Any], code_dir: Path
) -> None:
    for count, repeat, sample in zip(args.tenants, args.repeat, args.baseline_sample, strict=True):
        db = server.url.database if args.database_url else f"bench_n{count}"
        assert db
        bench = TenantCount(server, args, count, repeat, sample, db, code_dir)
        try:
            bench.prepare()
            for scenario in args.scenarios:
                doc["results"].append(bench.run_scenario(scenario))
        finally:
            bench.cleanup(keep_working_db=bool(args.database_url))
        doc["setup_s"][str(count)] = bench.setup


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its JSON and markdown; return the JSON document."""
    args = _parse(argv)
    if args.render:
        rendered: dict[str, Any] = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render_markdown(rendered))
        return rendered
    code, code_dir = "working tree", ROOT
    if args.tenant_sync_ref:
        code_dir, commit = pin_tenant_sync(args.tenant_sync_ref)
        code = f"git revision {args.tenant_sync_ref} ({commit})"
    url = server_url(args.database_url)
    server = Server(url)
    doc: dict[str, Any] = {
        "format": 1,
        "command": shlex.join(
            ["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "tenants": args.tenants,
            "scenarios": args.scenarios,
            "variants": args.variants,
            "repeat": args.repeat,
            "workers": args.workers,
            "baseline_sample": args.baseline_sample,
        },
        "machine": machine_info(server.server_info()),
        "tenant_sync_code": code,
        "setup_s": {},
        "results": [],
    }
    started = time.monotonic()
    try:
        _run_counts(args, server, doc, code_dir)
    finally:
        if code_dir != ROOT:
            shutil.rmtree(code_dir, ignore_errors=True)
    doc["duration_s"] = round(time.monotonic() - started, 1)
    doc["machine"]["loadavg_end"] = list(os.getloadavg())
    doc["notes"] = _notes(doc, args)
    markdown = render_markdown(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)
    return doc


if __name__ == "__main__":
    main()
