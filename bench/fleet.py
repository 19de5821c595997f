"""A fleet of D databases of N tenants each against one database of D x N, same server, same run.

By hand, not CI (the test suite runs it once at a small size)::

    .venv/bin/python bench/fleet.py --tenants 1000 --databases 3 --repeat 3 \\
        --out bench/results/fleet.json

Templates (untimed): ``one`` holds D x N tenants, ``part0`` ... hold N each, every one made
by tenant_sync itself at v1 and at v2, as ``bench/run.py`` makes its own.  Each
measurement starts from fresh copies (``CREATE DATABASE ... TEMPLATE``, then a
CHECKPOINT) and runs in a process of its own; variants are interleaved round by round:

* ``one``: ``TenantSync(url, model_v2(), workers=W).sync_all()`` on the one database;
* ``fleet``: ``Fleet({part0: ..., ...}, model_v2(), workers=W).sync_all()``, every
  database at once (W connections each);
* ``fleet_capped``: the same with ``max_workers=W``: every database at once (their
  catalog passes and comparisons too), but at most W tenants in flight over the fleet,
  as many as ``one`` has.

Scenarios: ``change`` (v1 -> v2) and ``noop`` (all at v2).  The fleet must not be slower
per tenant than the one database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import measure_in_child
from bench.state import Server, create_schemas, server_url, tenant_names

VARIANTS = ("one", "fleet", "fleet_capped")
SCENARIOS = ("change", "noop")
_START = {"change": "v1", "noop": "v2"}


def fleet_measure(spec: dict[str, Any]) -> dict[str, Any]:
    """In the child: one run of a variant (or a template's build); its time and counts."""
    from bench import model
    from tenant_sync import Fleet, TenantSync

    metadata = model.model_v1() if spec["version"] == "v1" else model.model_v2()
    workers = int(spec["workers"])
    started = time.perf_counter()
    if spec["variant"] == "one":
        with TenantSync(spec["urls"]["one"], metadata, workers=workers) as ts:
            report = ts.sync_all()
    else:
        capped = workers if spec["variant"] == "fleet_capped" else None
        with Fleet(spec["urls"], metadata, workers=workers, max_workers=capped) as fleet:
            report = fleet.sync_all()
    seconds = time.perf_counter() - started
    failed = report.failed()
    return {
        "seconds": seconds,
        "tenants": len(report.results),
        "counts": report.counts,
        "first_error": failed[0].error if failed else None,
    }


class FleetBench:
    """The templates, the working copies and the measurements of one size."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = Server(server_url(args.url))
        self.count, self.parts = args.tenants, args.databases
        self.names = tenant_names(self.count * self.parts)
        self.labels = ["one"] + [f"part{k}" for k in range(self.parts)]

    def _template(self, label: str, version: str) -> str:
        return f"{self.args.prefix}_{label}_{version}"

    def _work(self, label: str) -> str:
        return f"{self.args.prefix}_{label}"

    def _tenants_of(self, label: str) -> list[str]:
        if label == "one":
            return self.names
        k = int(label[4:])
        return self.names[k * self.count : (k + 1) * self.count]

    def prepare(self) -> None:
        """Build every template at v1 then v2, each by tenant_sync (untimed); with
        ``--reuse``, those a kept earlier run left are used as they are."""
        existing = self.server.databases() if self.args.reuse else set()
        for label in self.labels:
            if {self._template(label, "v1"), self._template(label, "v2")} <= existing:
                _log(f"templates of {label}: reused")
                continue
            empty = self._template(label, "empty")
            self.server.drop(empty)
            self.server.create(empty)
            create_schemas(self.server.database(empty), self._tenants_of(label))
            previous = empty
            for version in ("v1", "v2"):
                name = self._template(label, version)
                self.server.copy(previous, name)
                urls = {"one": self.server.database(name).render_as_string(False)}
                result = measure_in_child(
                    {"variant": "one", "urls": urls, "version": version, "workers": 4},
                    measure=fleet_measure,
                )
                if result.get("error") or result.get("first_error"):
                    raise SystemExit(f"building {name} failed: {result}")
                _log(f"template {name}: {result['counts']}")
                previous = name
            self.server.drop(empty)

    def measure(self, variant: str, scenario: str, first: bool) -> dict[str, Any]:
        """One measurement from fresh copies of the scenario's templates (a no-op, which
        changes nothing, reuses the copies after its first round)."""
        version = _START[scenario]
        labels = ["one"] if variant == "one" else self.labels[1:]
        urls = {}
        for label in labels:
            if first or scenario != "noop":
                self.server.copy(self._template(label, version), self._work(label))
            urls[label] = self.server.database(self._work(label)).render_as_string(False)
        if first or scenario != "noop":
            self.server.checkpoint()
        spec = {"variant": variant, "urls": urls, "version": "v2", "workers": self.args.workers}
        result = measure_in_child(spec, measure=fleet_measure)
        if result.get("error") or result.get("first_error"):
            raise SystemExit(f"{variant} {scenario} failed: {result}")
        return result

    def run(self) -> dict[str, Any]:
        runs: dict[str, dict[str, list[float]]] = {s: {v: [] for v in VARIANTS} for s in SCENARIOS}
        for scenario in self.args.scenarios:
            for round_ in range(self.args.repeat):
                for variant in self.args.variants:
                    result = self.measure(variant, scenario, first=round_ == 0)
                    runs[scenario][variant].append(round(result["seconds"], 3))
                    _log(f"{scenario} round {round_ + 1} {variant}: {result['seconds']:.2f}s")
        return {"runs": runs}

    def cleanup(self) -> None:
        for label in self.labels:
            self.server.drop(self._work(label))
            if not self.args.keep:
                for version in ("v1", "v2"):
                    self.server.drop(self._template(label, version))


def render(args: argparse.Namespace, runs: dict[str, dict[str, list[float]]], info: str) -> str:
    """The markdown page: how it was run, medians per tenant, the fleet's ratio to one."""
    total = args.tenants * args.databases
    lines = [
        f"# A fleet of {args.databases} databases x {args.tenants:,} tenants against one"
        f" database of {total:,}, {time.strftime('%Y-%m-%d')}",
        "",
        f"Command: `python bench/fleet.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}; {info}.",
        "",
        "Median of the runs; every run from fresh copies of the templates, in a process of",
        f"its own, variants interleaved round by round; {args.workers} workers per database.",
        "",
        "| scenario | variant | runs (s) | median s | ms/tenant | / one |",
        "|---|---|---|---:|---:|---:|",
    ]
    for scenario in args.scenarios:
        one = statistics.median(runs[scenario]["one"]) if runs[scenario]["one"] else None
        for variant in args.variants:
            times = runs[scenario][variant]
            median = statistics.median(times)
            ratio = f"{median / one:.2f}" if one else "-"
            lines.append(
                f"| {scenario} | {variant} | {' / '.join(f'{t:.2f}' for t in times)} |"
                f" {median:.2f} | {1000 * median / total:.2f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def _log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the server (default: TENANT_SYNC_BENCH_URL or local)")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants per database")
    parser.add_argument("--databases", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="workers per database")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--keep", action="store_true", help="keep the templates")
    parser.add_argument("--reuse", action="store_true", help="use templates kept by --keep")
    parser.add_argument("--prefix", default="bench_fleet", help="the databases' names start so")
    parser.add_argument("--out", type=Path, default=Path("bench/results/fleet-latest.json"))
    args = parser.parse_args()
    bench = FleetBench(args)
    info = bench.server.server_info().get("version", "")
    try:
        bench.prepare()
        result = bench.run()
    finally:
        bench.cleanup()
    page = render(args, result["runs"], info.split(",")[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"args": vars(args) | {"out": str(args.out)}, **result}, indent=2)
    )
    args.out.with_suffix(".md").write_text(page)
    print(page)


if __name__ == "__main__":
    main()
