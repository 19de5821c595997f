"""Logging: one line per tenant on the ``tenant_sync`` logger; an opt-in shared log file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import make_schemas
from models import model_v1
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync, add_shared_log_file


def test_one_info_line_per_tenant_with_status_and_time(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    make_schemas(engine, ["a", "b"])
    caplog.set_level(logging.INFO, logger="tenant_sync")
    with TenantSync(database_url, model_v1()) as ts:
        ts.sync_all()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tenant ")]
    assert sorted(line.split(":")[0] for line in lines) == ["tenant a", "tenant b"]
    assert all(" migrated in " in line and "s (" in line for line in lines)
    assert all(r.name.startswith("tenant_sync") for r in caplog.records if r.name != "alembic")


def test_shared_log_file_receives_the_tenant_lines(
    database_url: URL, engine: Engine, tmp_path: Path
) -> None:
    make_schemas(engine, ["a"])
    log_file = tmp_path / "logs" / "sync.log"
    handler = add_shared_log_file(log_file)
    try:
        with TenantSync(database_url, model_v1()) as ts:
            ts.sync_all()
    finally:
        logging.getLogger("tenant_sync").removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert "tenant a: migrated in" in text
    assert "sync of 1 tenants" in text
