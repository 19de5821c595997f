"""docker-compose.yml offers PostgreSQL 16 and pgbouncer in transaction mode.

Docker cannot run on the CI machine, so this checks the file's declarations; the
pooler behaviour itself is tested against Debian's pgbouncer in
tests/reliability/test_pgbouncer.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_postgres_16_service_publishes_the_default_port() -> None:
    postgres = _services()["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "5432:5432" in postgres["ports"]
    assert postgres["environment"]["POSTGRES_PASSWORD"]


def test_pgbouncer_service_pools_transactions_in_front_of_postgres() -> None:
    pgbouncer = _services()["pgbouncer"]
    environment = pgbouncer["environment"]
    assert environment["POOL_MODE"] == "transaction"
    assert environment["DB_HOST"] == "postgres"
    assert "6432:6432" in pgbouncer["ports"]
    assert pgbouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
