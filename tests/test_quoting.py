"""Tenant names with spaces, quotes, semicolons or capitals work and never inject SQL."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from helpers import columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync
from tenant_sync.sql import literal

HOSTILE = [
    "with space",
    'double "quote"',
    "single 'quote'",
    "semi;colon",
    "CamelCase",
    'x"; DROP SCHEMA public CASCADE; --',
    "x'); DROP TABLE public.plans; --",
    "ünïcödé",
    "back\\slash\\'",
    "$tenant_sync$ dollar",
    "per%cent %s %(x)s",
    "colon :x ::y",
]


def test_hostile_schema_names_sync_and_inject_nothing(
    database_url: URL, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tenant_sync")
    make_schemas(engine, HOSTILE[:4])
    with TenantSync(database_url, model_v1(), tenants=HOSTILE[:4]) as ts:
        listed = ts.sync_all()
        signed_up = [ts.sync_tenant(name) for name in HOSTILE[4:]]
    with TenantSync(database_url, model_v2(), tenants=HOSTILE, workers=4) as ts:
        changed = ts.sync_all()
        again = ts.sync_all()

    assert listed.ok and all(r.status == "migrated" for r in signed_up)
    assert changed.ok and changed.counts["migrated"] == len(HOSTILE)
    assert again.counts["unchanged"] == len(HOSTILE)
    for name in HOSTILE:
        assert "labels" in tables(engine, name), name
        assert "priority" in columns(engine, name, "projects")
    assert tables(engine, "public") == {"plans"}
    # Every tenant took the one-round-trip path, whose SQL carries the names as literals.
    assert "comparing it alone" not in caplog.text


@pytest.mark.parametrize("conforming", ["on", "off"])
def test_literals_read_back_exactly_whatever_standard_conforming_strings_says(
    engine: Engine, conforming: str
) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text(f"SET LOCAL standard_conforming_strings = {conforming}"))
        # Sent as batches are, without parameters, so "%" is not a placeholder.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for value in [*HOSTILE, "", "\\", "\\'", "'\\", "tab\there", "E'x'"]:
            cursor.execute(f"SELECT {literal(value)}")
            assert cursor.fetchone() == (value,)
