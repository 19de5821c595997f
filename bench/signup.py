"""Benchmark signups: one new tenant at a time into a database that holds N tenants.

::

    python bench/signup.py --tenants 1000 --signups 20 --repeat 3 --tenant-sync-ref HEAD \\
        --out bench/results/signup.json

In a database of its own (``bench_signup_n<N>``, dropped at the end, or
``--database-url``'s) holding N tenants
built to v1, three ways of signing up ``--signups`` new tenants one after another, each
timed in a process of its own from the same starting state (a copy of a template):

(a) the plain loop a user writes: per new tenant ``CREATE SCHEMA``, then Alembic
    autogenerate and ``Operations.invoke``, in one transaction;
(b) ``TenantSync(url, metadata).sync_tenant(name)`` for each, on one TenantSync, as
    an application would keep it: the first signup compares the empty schema with the
    model, the later ones build from its plan;
(c) the raw-DDL floor: ``BEGIN; CREATE SCHEMA; SET LOCAL search_path; <DDL>; COMMIT``,
    one round trip per tenant.

Reported in milliseconds per signup, with tenant_sync's first signup apart from the
later ones, and the ratios of the later ones to (a) and (c).  After each run the new
tenants' catalog is checked against a reference built from the raw DDL.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import sqlalchemy as sa
from psycopg import sql

from bench import model
from bench.code import ROOT, pin_tenant_sync
from bench.measure import measure_in_child, plain_migrate
from bench.report import machine_info, machine_line
from bench.state import (
    Server,
    catalog_digests,
    conninfo,
    create_schemas,
    run_per_tenant,
    server_url,
    tenant_names,
)

VARIANTS = ("plain", "tenant_sync", "floor")
_MODEL_TABLES = sorted(model.model_v1().tables)


def signup_names(count: int) -> list[str]:
    """The new tenants' names: after the existing ones in sorted order."""
    return [f"tenant_new_{i:04d}" for i in range(count)]


def plain_signups(url: str, names: list[str]) -> list[float]:
    """Per new tenant: CREATE SCHEMA, autogenerate, apply; seconds per signup."""
    metadata = model.model_v1()
    engine = sa.create_engine(url)
    seconds = []
    for name in names:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            conn.execute(sa.text(f'SET LOCAL search_path TO "{name}"'))
            plain_migrate(conn, metadata)
        seconds.append(time.perf_counter() - started)
    engine.dispose()
    return seconds


def tenant_sync_signups(url: str, names: list[str]) -> list[float]:
    """One TenantSync, ``sync_tenant(name)`` for each new tenant; seconds per signup."""
    from tenant_sync import TenantSync

    seconds = []
    with TenantSync(url, model.model_v1()) as ts:
        for name in names:
            started = time.perf_counter()
            result = ts.sync_tenant(name)
            seconds.append(time.perf_counter() - started)
            if result.status != "migrated":
                raise RuntimeError(f"signup of {name}: {result.status}: {result.error}")
    return seconds


def floor_signups(url: str, names: list[str]) -> list[float]:
    """The raw DDL, one round trip and one transaction per new tenant."""
    body = "".join(f"{statement};\n" for statement in model.build_ddl(model.model_v1()))
    seconds = []
    with psycopg.connect(conninfo(sa.make_url(url)), autocommit=True) as conn:
        for name in names:
            started = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "BEGIN; CREATE SCHEMA {0}; SET LOCAL search_path TO {0};\n{1}COMMIT"
                ).format(sql.Identifier(name), sql.SQL(body))
            )
            seconds.append(time.perf_counter() - started)
    return seconds


_RUNNERS = {"plain": plain_signups, "tenant_sync": tenant_sync_signups, "floor": floor_signups}


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in the measuring child (see bench.measure.measure_in_child)."""
    if spec["variant"] == "tenant_sync":
        import tenant_sync  # noqa: F401  (imported before the clock starts)
    seconds = _RUNNERS[spec["variant"]](spec["url"], spec["tenants"])
    return {"per_signup_s": seconds}


def _run(args: argparse.Namespace, server: Server, code_dir: Path) -> dict[str, Any]:
    db = server.url.database if args.database_url else f"bench_signup_n{args.tenants}"
    assert db
    template = f"{db}_v1"
    names = signup_names(args.signups)
    started = time.monotonic()
    server.drop(template)
    server.create(template)
    url = server.database(template)
    create_schemas(url, [*tenant_names(args.tenants), "ref_v1"])
    run_per_tenant(url, [*tenant_names(args.tenants), "ref_v1"], model.build_ddl(model.model_v1()))
    reference = catalog_digests(url, ["ref_v1"], _MODEL_TABLES)["ref_v1"]
    setup_s = round(time.monotonic() - started, 1)
    runs: dict[str, list[list[float]]] = {variant: [] for variant in args.variants}
    try:
        for repeat in range(args.repeat):
            for variant in args.variants:
                server.drop(db)
                server.copy(template, db)
                server.checkpoint()
                spec = {
                    "variant": variant,
                    "url": server.database(db).render_as_string(hide_password=False),
                    "tenants": names,
                }
                result = measure_in_child(spec, code_dir, measure=_measure)
                if "error" in result:
                    raise RuntimeError(f"{variant}: {result['error']}")
                digests = catalog_digests(server.database(db), names, _MODEL_TABLES)
                wrong = [name for name in names if digests.get(name) != reference]
                if wrong:
                    raise RuntimeError(f"{variant}: {len(wrong)} new tenants differ from v1")
                runs[variant].append(result["per_signup_s"])
                print(
                    f"[{time.strftime('%H:%M:%S')}] {variant} {repeat + 1}/{args.repeat}: "
                    f"first {result['per_signup_s'][0] * 1000:.0f} ms, later median "
                    f"{statistics.median(result['per_signup_s'][1:]) * 1000:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if not args.database_url:
            server.drop(db)
        server.drop(template)
    return {"setup_s": setup_s, "runs_s": runs}


def summarize(runs: dict[str, list[list[float]]]) -> dict[str, Any]:
    """Median over runs of the first signup and of the later ones' median, in ms."""
    summary: dict[str, Any] = {}
    for variant, variant_runs in runs.items():
        summary[variant] = {
            "first_ms": round(statistics.median(r[0] for r in variant_runs) * 1000, 1),
            "later_ms": round(
                statistics.median(statistics.median(r[1:]) for r in variant_runs) * 1000, 1
            ),
        }
    later = {variant: values["later_ms"] for variant, values in summary.items()}
    if "tenant_sync" in later:
        # Of the later signups: the first one's comparison is paid once per TenantSync.
        summary["ratios"] = {
            f"b_over_{letter}": round(later["tenant_sync"] / later[variant], 3)
            for variant, letter in (("plain", "a"), ("floor", "c"))
            if variant in later
        }
    return summary


def render(doc: dict[str, Any]) -> str:
    """The results as a markdown table."""
    summary = doc["summary"]
    lines = [
        f"# Signups into a database of {doc['settings']['tenants']:,} tenants, "
        f"{doc['started_at'][:10]}",
        "",
        f"Command: `{doc['command']}`",
        "",
        machine_line(doc["machine"]),
        "",
        f"tenant_sync measured: {doc['tenant_sync_code']}. {doc['settings']['signups']} "
        f"signups per run, one after another; median of {doc['settings']['repeat']} runs.",
        "",
        "| variant | first signup ms | later signups ms (median) |",
        "|---|---:|---:|",
    ]
    labels = {"plain": "(a) plain loop", "tenant_sync": "(b) tenant_sync", "floor": "(c) floor"}
    for variant, label in labels.items():
        if variant in summary:
            values = summary[variant]
            lines.append(f"| {label} | {values['first_ms']} | {values['later_ms']} |")
    ratios = summary.get("ratios", {})
    if ratios:
        shown = ", ".join(
            f"{name.replace('_over_', '/')} {value}" for name, value in ratios.items()
        )
        lines += ["", f"Later signups: {shown}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Run the signup benchmark, write its JSON and markdown, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000, metavar="N")
    parser.add_argument("--signups", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--database-url",
        help="the working database (left for you to drop); by default bench_signup_n<N> "
        "on TENANT_SYNC_BENCH_URL's server, dropped at the end",
    )
    parser.add_argument("--tenant-sync-ref", metavar="REV")
    parser.add_argument("--out", type=Path, default=Path("bench/results/signup-latest.json"))
    args = parser.parse_args(argv)
    if args.signups < 2:
        parser.error("--signups must be at least 2 (the first is reported apart)")
    code, code_dir = "working tree", ROOT
    if args.tenant_sync_ref:
        code_dir, commit = pin_tenant_sync(args.tenant_sync_ref)
        code = f"git revision {args.tenant_sync_ref} ({commit})"
    server = Server(server_url(args.database_url))
    doc: dict[str, Any] = {
        "command": shlex.join(
            ["python", "bench/signup.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": vars(args) | {"out": str(args.out)},
        "machine": machine_info(server.server_info()),
        "tenant_sync_code": code,
    }
    try:
        doc |= _run(args, server, code_dir)
    finally:
        if code_dir != ROOT:
            shutil.rmtree(code_dir, ignore_errors=True)
    doc["machine"]["loadavg_end"] = list(os.getloadavg())
    doc["summary"] = summarize(doc["runs_s"])
    markdown = render(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
