"""Tenant names with spaces, quotes, semicolons or capitals work and never inject SQL."""

from __future__ import annotations

from helpers import columns, make_schemas, tables
from models import model_v1, model_v2
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync

HOSTILE = [
    "with space",
    'double "quote"',
    "single 'quote'",
    "semi;colon",
    "CamelCase",
    'x"; DROP SCHEMA public CASCADE; --',
    "x'); DROP TABLE public.plans; --",
    "ünïcödé",
]


def test_hostile_schema_names_sync_and_inject_nothing(database_url: URL, engine: Engine) -> None:
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
