"""Paired runs: git revisions of tenant_sync, interleaved, each on a fresh copy of one database.

By hand, not CI.  For each round and each revision: the database ``pair`` is made anew from
``--template`` (``CREATE DATABASE ... TEMPLATE``, then a CHECKPOINT; untimed), then one
``TenantSync(url, model_v2()).sync_all()`` runs in a process of its own, with tenant_sync
as of that revision (extracted by ``git archive``), and its wall time is printed::

    .venv/bin/python bench/paired.py --template pair_v1 --revisions e978538 83b1cbf --rounds 3

A revision can name a template of its own as ``REV:TEMPLATE``.  With ``--same-database``
the template itself is synced (for a no-op, where nothing changes between runs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import psycopg
from psycopg import sql

_ROOT = Path(__file__).resolve().parent.parent
_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_RUN = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/bench"]
from tenant_sync import TenantSync
from bench.model import model_v2
started = time.perf_counter()
with TenantSync(sys.argv[2], model_v2()) as ts:
    report = ts.sync_all()
print(f"{time.perf_counter() - started:.2f}", report.summary())
"""


def main() -> None:
    """Run the rounds and print each run's time and summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True, help="database every run starts from")
    parser.add_argument("--revisions", nargs="+", required=True, metavar="REV[:TEMPLATE]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--same-database", action="store_true", help="sync the template itself")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_paired_") as scratch:
        sources = {item: _extract(item.split(":")[0], Path(scratch)) for item in args.revisions}
        for number in range(1, args.rounds + 1):
            for item, source in sources.items():
                revision, _, template = item.partition(":")
                database = template or args.template
                if not args.same_database:
                    database = _fresh_copy(database)
                url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
                done = subprocess.run(
                    [sys.executable, "-c", _RUN, str(source), url],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                print(f"round {number} {revision}: {done.stdout.strip()}", flush=True)


def _extract(revision: str, scratch: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", revision, "tenant_sync", "bench"],
        cwd=_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    target = scratch / revision
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def _fresh_copy(template: str) -> str:
    with psycopg.connect(_SERVER, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS pair")
        conn.execute(sql.SQL("CREATE DATABASE pair TEMPLATE {}").format(sql.Identifier(template)))
        conn.execute("CHECKPOINT")
    return "pair"


if __name__ == "__main__":
    main()
