"""The coordinator killed with SIGKILL at random moments of a model change.

Every tenant is then either fully at the old model or fully at the new one, checked
change by change (table, two columns, enum type, index, version row), and a rerun
converges: it migrates exactly the tenants left behind, and the run after it has
nothing to do.  The kill lands on a random number of finished tenants, stratified over
the run, plus a random delay; the seed is printed (set TENANT_SYNC_FAULT_SEED to replay).
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import drop_database
from faults_helpers import (
    Fingerprints,
    build_v1_tenants,
    clone_database,
    count_tenants_with_labels,
    half_migrated,
    start_sync_process,
    stop_process,
    tenant_names,
    tenant_states,
    tenants_in_flight,
    wait_until,
)
from models import model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


@dataclass
class _Trial:
    target: int
    at_v2: int
    in_flight: int
    committed_after_kill: int
    retried: int


def test_kill_9_leaves_every_tenant_whole_and_a_rerun_converges(
    admin_engine: Engine, database_url: URL, tmp_path: Path
) -> None:
    _kill_trials(admin_engine, database_url, tmp_path, tenants=40, trials=3)


@pytest.mark.slow
def test_kill_9_leaves_every_tenant_whole_and_a_rerun_converges_200_tenants_20_trials(
    admin_engine: Engine, database_url: URL, tmp_path: Path
) -> None:
    _kill_trials(admin_engine, database_url, tmp_path, tenants=200, trials=20)


def _kill_trials(
    admin_engine: Engine, template: URL, tmp_path: Path, tenants: int, trials: int
) -> None:
    seed = int(os.environ.get("TENANT_SYNC_FAULT_SEED", time.time_ns() % 2**32))
    print(f"kill -9 seed: {seed}")
    rng = random.Random(seed)
    names = tenant_names(tenants)
    fingerprints = build_v1_tenants(template, names)
    # Stratify the kill points over the first 70% of the run, so that early, middle
    # and late kills all happen even in a few trials.
    span = tenants * 7 // 10
    done: list[_Trial] = []
    for trial in range(trials):
        low, high = span * trial // trials, span * (trial + 1) // trials
        url = clone_database(admin_engine, template, f"kill_trial_{trial}")
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            result = _kill_once(
                url, engine, names, fingerprints, rng.randint(low, high), rng, tmp_path
            )
        finally:
            engine.dispose()
            drop_database(admin_engine, url)
        print(
            f"  trial {trial + 1}: killed after >= {result.target} tenants;"
            f" {result.at_v2} at v2, {tenants - result.at_v2} at v1, 0 half-migrated;"
            f" {result.in_flight} transactions in flight at the kill;"
            f" rerun: {result.committed_after_kill} already committed by the dying"
            f" backends, {result.retried} retried"
        )
        done.append(result)
    print(
        f"kill -9 trials: {len(done)}, tenants checked: {len(done) * tenants}, half-migrated: 0"
        f" (tenants in flight at the kills: {sum(t.in_flight for t in done)})"
    )
    assert sum(t.in_flight for t in done) > 0, "no kill landed on a tenant in flight"


def _kill_once(
    url: URL,
    engine: Engine,
    names: list[str],
    fingerprints: Fingerprints,
    target: int,
    rng: random.Random,
    tmp_path: Path,
) -> _Trial:
    process = start_sync_process(url, tmp_path / "report.json", workers=4)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            wait_until(
                lambda: process.poll() is not None or count_tenants_with_labels(watcher) >= target,
                timeout_s=120,
                what=f"{target} tenants migrated by the coordinator",
            )
            time.sleep(rng.uniform(0, 0.05))  # the random moment itself
            in_flight = tenants_in_flight(watcher)
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop_process(process)
    assert process.returncode == -signal.SIGKILL, (
        f"the coordinator ended before the kill (exit {process.returncode}); kill earlier"
    )

    states = tenant_states(engine, names, fingerprints)
    assert half_migrated(states) == {}
    at_v2 = {name for name, state in states.items() if state == "v2"}

    # At once, while the killed coordinator's backends may still hold locks.
    with TenantSync(url, model_v2(), tenants="tenant_%", workers=4) as ts:
        rerun = ts.sync_all()
        assert rerun.ok, rerun.failed()
        assert len(rerun.results) == len(names)
        for result in rerun.results:
            if result.schema in at_v2:
                assert result.status == "unchanged", result
            else:
                # "unchanged" only if a dying backend committed it after the check above
                assert result.status in ("migrated", "unchanged"), result
        assert set(tenant_states(engine, names, fingerprints).values()) == {"v2"}
        third = ts.sync_all()
        assert third.counts["unchanged"] == len(names), third.counts
    return _Trial(
        target=target,
        at_v2=len(at_v2),
        in_flight=in_flight,
        committed_after_kill=sum(
            r.status == "unchanged" and r.schema not in at_v2 for r in rerun.results
        ),
        retried=sum(r.attempts > 1 for r in rerun.results),
    )
