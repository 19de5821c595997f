"""The benchmark's output: machine facts, per-variant summaries, and the markdown table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from typing import Any

from bench.code import ROOT

__all__ = ["VARIANT_LABELS", "machine_info", "render_markdown", "summarize"]


#: Variant key -> column label, in table order.
VARIANT_LABELS = {
    "plain": "(a) plain loop",
    "tenant_sync": "(b) tenant_sync",
    "floor_serial": "(c) raw DDL, serial",
    "floor_parallel": "(c) raw DDL, parallel",
}


def _meminfo_gb() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip()


def machine_info(server: dict[str, str]) -> dict[str, Any]:
    """Cores, memory, versions of everything measured, and the code's git commit."""
    versions = {}
    for package in ("sqlalchemy", "alembic", "psycopg", "tenant_sync"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "?"
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": _meminfo_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": server.get("server_version", "?"),
        "postgresql_settings": {k: v for k, v in server.items() if k != "server_version"},
        "versions": versions,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "tenant_sync_uncommitted_changes": bool(_git("status", "--porcelain", "tenant_sync")),
        "loadavg_start": list(os.getloadavg()),
    }


def summarize(runs: list[dict[str, Any]], tenants: int) -> dict[str, Any]:
    """Medians of one variant's runs; seconds extrapolated to all tenants if sampled."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"error": runs[-1].get("error", "no runs"), "runs": runs}
    measured = good[0]["measured_tenants"]
    scale = tenants / measured
    seconds = statistics.median(run["seconds"] for run in good) * scale
    return {
        "seconds": round(seconds, 3),
        "ms_per_tenant": round(seconds / tenants * 1000, 2),
        "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in good),
        "rss_before_mb": statistics.median(run["rss_before_mb"] for run in good),
        "runs_s": [round(run["seconds"], 3) for run in good],
        "loadavg_1m": [run["loadavg_1m"] for run in good],
        "measured_tenants": measured,
        "extrapolated": measured != tenants,
        "workers": good[0]["workers"],
        "operations": good[0]["operations"],
        "verified": all(run["verified"] for run in good),
        "checkpoint_before": all(run.get("checkpoint_before") for run in good),
        "errors": [run["error"] for run in runs if "error" in run],
        **({"statuses": good[0]["statuses"]} if "statuses" in good[0] else {}),
    }


def _ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None) -> float | None:
    if (
        not numerator
        or not denominator
        or "seconds" not in numerator
        or "seconds" not in denominator
    ):
        return None
    if denominator["seconds"] <= 0:
        return None
    return round(float(numerator["seconds"]) / float(denominator["seconds"]), 2)


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """b/a, b/c (c = the parallel floor, as many threads as tenant_sync has workers), b/c serial."""
    b = variants.get("tenant_sync")
    return {
        "b_over_a": _ratio(b, variants.get("plain")),
        "b_over_c": _ratio(b, variants.get("floor_parallel")),
        "b_over_c_serial": _ratio(b, variants.get("floor_serial")),
    }


def _cell(variant: dict[str, Any] | None, key: str) -> str:
    if not variant:
        return "-"
    if "error" in variant and key not in variant:
        return "error"
    value = variant.get(key)
    if value is None:
        return "-"
    text = f"{value:,.{2 if key == 'seconds' else 1}f}"
    if variant.get("extrapolated") and key in ("seconds", "ms_per_tenant"):
        text += "\\*"
    if key == "seconds" and not variant.get("verified", True):
        text += " (!)"
    return text


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def machine_line(machine: dict[str, Any]) -> str:
    """One line that says what the benchmark ran on (see :func:`machine_info`)."""
    versions = machine["versions"]
    return (
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB RAM, "
        f"{machine['os']}; PostgreSQL {machine['postgresql']} on the same machine "
        f"(shared_buffers {machine['postgresql_settings'].get('shared_buffers', '?')}, "
        f"fsync {machine['postgresql_settings'].get('fsync', '?')}); Python {machine['python']}, "
        f"SQLAlchemy {versions['sqlalchemy']}, Alembic {versions['alembic']}, "
        f"psycopg {versions['psycopg']}; repository at commit {machine['git_commit']}"
        f"{' (tenant_sync/ with uncommitted changes)' if machine['tenant_sync_uncommitted_changes'] else ''}. "
        f"Load average at start {machine['loadavg_start'][0]:.2f}, at end "
        + (f"{machine['loadavg_end'][0]:.2f}." if "loadavg_end" in machine else "not recorded.")
    )


def render_markdown(doc: dict[str, Any]) -> str:
    """The results as a markdown page: settings, the time table, the memory table, notes."""
    machine = doc["machine"]
    settings = doc["settings"]
    lines = [
        f"# tenant_sync benchmark, {doc['started_at'][:10]}",
        "",
        f"Command: `{doc['command']}`",
        "",
        machine_line(machine),
        "",
        f"tenant_sync measured: {doc['tenant_sync_code']}.",
        "",
        "Median of `runs` runs; each measurement in a process of its own, from the "
        f"same starting state. (b) runs {settings['workers']} workers; (a) is serial; (c) is "
        f"shown serial and on {settings['workers']} threads, and **b/c uses the parallel floor**.",
        "",
        "## Time",
        "",
        "| tenants | scenario | runs | (a) plain s | (b) tenant_sync s | (c) floor serial s "
        "| (c) floor parallel s | (a) ms/tenant | (b) ms/tenant | (c) par. ms/tenant "
        "| b/a | b/c | b/c serial |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in doc["results"]:
        v = entry["variants"]
        r = entry["ratios"]
        lines.append(
            f"| {entry['tenants']:,} | {entry['scenario']} | {entry['repeat']} "
            f"| {_cell(v.get('plain'), 'seconds')} | {_cell(v.get('tenant_sync'), 'seconds')} "
            f"| {_cell(v.get('floor_serial'), 'seconds')} "
            f"| {_cell(v.get('floor_parallel'), 'seconds')} "
            f"| {_cell(v.get('plain'), 'ms_per_tenant')} "
            f"| {_cell(v.get('tenant_sync'), 'ms_per_tenant')} "
            f"| {_cell(v.get('floor_parallel'), 'ms_per_tenant')} "
            f"| {_x(r['b_over_a'])} | {_x(r['b_over_c'])} | {_x(r['b_over_c_serial'])} |"
        )
    lines += [
        "",
        "## Peak memory (RSS of the measuring process, MB)",
        "",
        "| tenants | scenario | (a) plain | (b) tenant_sync | (c) floor serial | (c) floor parallel "
        "| (b) before run |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for entry in doc["results"]:
        v = entry["variants"]
        lines.append(
            f"| {entry['tenants']:,} | {entry['scenario']} | {_cell(v.get('plain'), 'peak_rss_mb')} "
            f"| {_cell(v.get('tenant_sync'), 'peak_rss_mb')} "
            f"| {_cell(v.get('floor_serial'), 'peak_rss_mb')} "
            f"| {_cell(v.get('floor_parallel'), 'peak_rss_mb')} "
            f"| {_cell(v.get('tenant_sync'), 'rss_before_mb')} |"
        )
    lines += [
        "",
        "## Every run (s), in the order run, to judge the noise",
        "",
        "| tenants | scenario | (a) plain | (b) tenant_sync | (c) floor serial | (c) floor parallel |",
        "|---:|---|---|---|---|---|",
    ]
    for entry in doc["results"]:
        v = entry["variants"]
        runs = [
            " / ".join(f"{s:.2f}" for s in v.get(name, {}).get("runs_s", [])) or "-"
            for name in VARIANT_LABELS
        ]
        lines.append(f"| {entry['tenants']:,} | {entry['scenario']} | {' | '.join(runs)} |")
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in doc["notes"]]
    return "\n".join(lines) + "\n"
