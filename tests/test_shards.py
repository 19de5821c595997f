"""One run split into shares (``shard=(I, N)``, ``--shard I/N``) and their reports merged.

The shares must partition the tenants exactly and stably; shares that overlap must
never sync one tenant twice; merged reports must equal one run's; and the Kubernetes
and CI examples in ``docs/examples`` must run the commands that do that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from helpers import make_schemas
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine
from test_cli import TESTS, run_cli, text_url

from tenant_sync import SyncReport, TenantSync
from tenant_sync.errors import ConfigurationError
from tenant_sync.fleet.merge import merge_reports
from tenant_sync.shards import parse_shard, share_of

EXAMPLES = TESTS.parent / "docs" / "examples"
NAMES = [f"tenant_{i:02d}" for i in range(24)]


def _build_v1(url: URL, engine: Engine, names: list[str] = NAMES) -> None:
    make_schemas(engine, names)
    with TenantSync(url, model_v1(), tenants="tenant_%") as ts:
        assert ts.sync_all().counts["migrated"] == len(names)


def _copy(admin_engine: Engine, url: URL) -> URL:
    """A second database, a copy of ``url``'s (which nobody may be connected to)."""
    copy = f"{url.database}_copy"[-63:]
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"'))
    return url.set(database=copy)


def _drop(admin_engine: Engine, url: URL) -> None:
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


def _tenant_results(report: SyncReport) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {r.schema: (r.status, tuple(r.operations)) for r in report.results}


def test_shares_partition_the_tenants_exactly_and_do_not_depend_on_order(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, NAMES)
    shares = []
    for index in range(3):
        with TenantSync(database_url, model_v2(), tenants="tenant_%", shard=(index, 3)) as ts:
            shares.append(ts.list_tenants())
    assert sorted(name for share in shares for name in share) == NAMES  # each once
    assert all(shares), shares  # 24 tenants over 3 shares: none empty
    # The same tenants named in the reverse order, or among others, keep their share.
    more = [*reversed(NAMES), "tenant_new"]
    make_schemas(engine, ["tenant_new"])
    with TenantSync(database_url, model_v2(), tenants=more, shard=(1, 3)) as ts:
        assert set(ts.list_tenants()) - {"tenant_new"} == set(shares[1])
    assert share_of(str(database_url.database), "tenant_00", 3) == share_of(
        str(database_url.database), "tenant_00", 3
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [("3/3", "I from 0 to N-1"), ("1", "--shard takes I/N"), ("a/b", "--shard takes I/N")],
)
def test_a_bad_shard_is_a_one_line_error(text: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        parse_shard(text)


def test_merged_share_reports_equal_one_run_s_report(
    admin_engine: Engine, database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _build_v1(database_url, engine)
    engine.dispose()
    whole = _copy(admin_engine, database_url)
    try:
        with TenantSync(whole, model_v2(), tenants="tenant_%") as ts:
            one_run = ts.sync_all()
        paths = []
        for index in range(3):
            path = tmp_path / f"share-{index}.json"
            done = run_cli(
                "sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v2",
                "--tenants", "tenant_%", "--shard", f"{index}/3", "--report", str(path),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            paths.append(str(path))
        merged_path = tmp_path / "all.json"
        done = run_cli("report", "merge", *paths, "--out", str(merged_path))
        assert done.returncode == 0, done.stderr
    finally:
        _drop(admin_engine, whole)
    merged = SyncReport.load(merged_path)
    assert _tenant_results(merged) == _tenant_results(one_run)
    assert merged.counts == one_run.counts == {**one_run.counts, "migrated": len(NAMES)}
    assert "shard" not in (merged.run.options if merged.run else {})


def test_overlapping_shares_never_sync_one_tenant_twice(database_url: URL, engine: Engine) -> None:
    _build_v1(database_url, engine)
    reports: list[SyncReport] = []

    def run(shard: tuple[int, int] | None) -> None:
        with TenantSync(database_url, model_v2(), tenants="tenant_%", shard=shard) as ts:
            reports.append(ts.sync_all())

    threads = [threading.Thread(target=run, args=(s,)) for s in [(0, 2), (0, 2), None, (1, 2)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(reports) == 4 and all(report.ok for report in reports), [r.failed() for r in reports]
    migrated: dict[str, int] = {}
    for report in reports:
        for result in report.results:
            migrated[result.schema] = migrated.get(result.schema, 0) + (result.status == "migrated")
    assert migrated == dict.fromkeys(NAMES, 1)
    with engine.connect() as conn:  # and each tenant's history has that one change
        for name in NAMES:
            count = conn.execute(sa.text(f'SELECT count(*) FROM "{name}".tenant_sync_history'))
            assert count.scalar_one() == 2, name  # v1's build, and v2's change


def test_merge_keeps_a_tenant_s_most_telling_result_and_refuses_mixed_runs() -> None:
    first = SyncReport.from_dict(_report([("a", "failed"), ("b", "skipped")]))
    second = SyncReport.from_dict(_report([("a", "migrated"), ("b", "unchanged"), ("c", "failed")]))
    merged = merge_reports([first, second])
    assert [(r.schema, r.status) for r in merged.results] == [
        ("a", "migrated"),
        ("b", "unchanged"),
        ("c", "failed"),
    ]
    with pytest.raises(ConfigurationError, match="dry run"):
        merge_reports([first, SyncReport(dry_run=True)])


def _report(results: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "format_version": 1,
        "results": [{"schema": schema, "status": status} for schema, status in results],
    }


def _environment(url: URL, **extra: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["TENANT_SYNC_DATABASE_URL"] = text_url(url)
    environment.update(extra)
    return environment


def test_the_indexed_job_example_runs_every_share_once(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _build_v1(database_url, engine)
    job = yaml.safe_load((EXAMPLES / "indexed-job.yaml").read_text())
    assert (job["kind"], job["spec"]["completionMode"]) == ("Job", "Indexed")
    completions = job["spec"]["completions"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    # The secret's URL is the test database's; the other values as the manifest sets them.
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    env.update(TENANT_SYNC_MODEL="cli_model:metadata_v2", REPORT_DIR=str(tmp_path))
    for index in range(completions):  # each pod, as the Job controller starts it
        pod = _environment(database_url, **env, JOB_COMPLETION_INDEX=str(index))
        done = subprocess.run(
            container["command"], env=pod, cwd=TESTS, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    shares = [SyncReport.load(tmp_path / f"share-{i}.json") for i in range(completions)]
    synced = sorted(r.schema for share in shares for r in share.results)
    assert synced == NAMES
    assert all(r.status == "migrated" for share in shares for r in share.results)


def test_the_ci_matrix_example_syncs_each_share_and_merges_them(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    _build_v1(database_url, engine)
    workflow = yaml.safe_load((EXAMPLES / "github-actions-shards.yml").read_text())
    share_job, merge_job = workflow["jobs"]["share"], workflow["jobs"]["merge"]
    env = _environment(
        database_url, TENANT_SYNC_MODEL="cli_model:metadata_v2", PYTHONPATH=str(TESTS)
    )
    (sync_step,) = [s for s in share_job["steps"] if "tenant-sync" in s.get("run", "")]
    (merge_step,) = [s for s in merge_job["steps"] if "tenant-sync" in s.get("run", "")]
    for shard in share_job["strategy"]["matrix"]["shard"]:
        command = sync_step["run"].replace("${{ matrix.shard }}", str(shard))
        done = subprocess.run(
            ["sh", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        ["sh", "-c", merge_step["run"]], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    merged = json.loads((tmp_path / "all.json").read_text())
    assert sorted(r["schema"] for r in merged["results"]) == NAMES
    assert merged["counts"]["migrated"] == len(NAMES)
    assert (tmp_path / "all.html").read_text().startswith("<!DOCTYPE html>")


def test_a_share_that_holds_no_tenant_is_a_normal_run_not_an_error(
    database_url: URL, engine: Engine
) -> None:
    make_schemas(engine, ["tenant_00"])
    index = 1 - share_of(str(database_url.database), "tenant_00", 2)  # the other share
    done = run_cli(
        "sync", "--url", text_url(database_url), "--model", "cli_model:metadata_v2",
        "--tenants", "tenant_%", "--shard", f"{index}/2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"note: share {index}/2 holds no tenant" in done.stdout, done.stdout
