"""Every kind of difference, one tenant each: the sync makes it equal, or says what differs.

A tenant is built from a rich model (enums in two tables, identity, arrays, GIN,
partial and expression indexes, a generated column, collations, CHECKs, foreign keys
to a shared table and within the tenant, comments), then changed by hand in one way;
a sync follows.  Its report must tell the truth, as PostgreSQL's catalog shows it: the
tenant is reported in sync exactly when it equals a schema built by ``create_all``
(``helpers.differences``), and otherwise the result lists what differs.  A second sync
has nothing left to do.  The shape plan and the per-tenant plan (``verify=True``)
plan the same for every kind.
"""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from helpers import build_with_create_all, differences
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Engine

from tenant_sync import TenantSync


def rich_model() -> sa.MetaData:
    """A model with one of everything the sweep changes."""
    metadata = sa.MetaData()
    plans = sa.Table(
        "plans", metadata, sa.Column("id", sa.Integer, primary_key=True), schema="public"
    )
    status = sa.Enum("open", "done", name="task_status")
    sa.Table(
        "projects",
        metadata,
        sa.Column("id", sa.Integer, sa.Identity(start=100), primary_key=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey(plans.c.id)),
        sa.Column("name", sa.String(100, collation="C"), nullable=False, comment="shown in the UI"),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("settings", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("budget", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("budget_x2", sa.Numeric(14, 2), sa.Computed("budget * 2", persisted=True)),
        sa.CheckConstraint("budget >= 0", name="ck_projects_budget"),
        sa.Index("ix_projects_settings", "settings", postgresql_using="gin"),
        sa.Index("ix_projects_lower_name", sa.text("lower(name)")),
        comment="customer projects",
    )
    sa.Table(
        "tasks",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE", name="fk_tasks_project"),
            nullable=False,
        ),
        sa.Column(
            "parent_id",
            sa.BigInteger,
            sa.ForeignKey(
                "tasks.id", name="fk_tasks_parent", deferrable=True, initially="DEFERRED"
            ),
        ),
        sa.Column("status", status, nullable=False, server_default="open"),
        sa.Index("ix_tasks_open", "project_id", postgresql_where=sa.text("status <> 'done'")),
    )
    sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", status),
    )
    return metadata


#: One change by hand per kind, made to a tenant built from the model ({t} its schema).
DRIFTS = {
    "index predicate": "DROP INDEX {t}.ix_tasks_open;"
    " CREATE INDEX ix_tasks_open ON {t}.tasks (project_id) WHERE status = 'open'",
    "index expression": "DROP INDEX {t}.ix_projects_lower_name;"
    " CREATE INDEX ix_projects_lower_name ON {t}.projects (upper(name))",
    "index method": "DROP INDEX {t}.ix_projects_settings;"
    " CREATE INDEX ix_projects_settings ON {t}.projects (settings)",
    "extra index": "CREATE INDEX ix_extra ON {t}.tasks (status)",
    "missing index": "DROP INDEX {t}.ix_tasks_open",
    "foreign key ON DELETE": "ALTER TABLE {t}.tasks DROP CONSTRAINT fk_tasks_project,"
    " ADD CONSTRAINT fk_tasks_project FOREIGN KEY (project_id) REFERENCES {t}.projects (id)",
    "foreign key DEFERRABLE": "ALTER TABLE {t}.tasks ALTER CONSTRAINT fk_tasks_parent NOT DEFERRABLE",
    "foreign key to a shared table": "ALTER TABLE {t}.projects DROP CONSTRAINT projects_plan_id_fkey",
    "identity options": "ALTER TABLE {t}.projects ALTER COLUMN id SET INCREMENT BY 5",
    "identity dropped": "ALTER TABLE {t}.projects ALTER COLUMN id DROP IDENTITY",
    "generated expression": "ALTER TABLE {t}.projects DROP COLUMN budget_x2,"
    " ADD COLUMN budget_x2 numeric(14, 2) GENERATED ALWAYS AS (budget * 3) STORED",
    "collation": 'ALTER TABLE {t}.projects ALTER COLUMN name TYPE varchar(100) COLLATE "POSIX"',
    "table comment": "COMMENT ON TABLE {t}.projects IS 'old words'",
    "column comment": "COMMENT ON COLUMN {t}.projects.name IS NULL",
    "server default": "ALTER TABLE {t}.projects ALTER COLUMN budget SET DEFAULT 1",
    "primary key": "ALTER TABLE {t}.events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (id, kind)",
    "check body": "ALTER TABLE {t}.projects DROP CONSTRAINT ck_projects_budget,"
    " ADD CONSTRAINT ck_projects_budget CHECK (budget > -1)",
    "array element type": "ALTER TABLE {t}.projects ALTER COLUMN tags DROP DEFAULT,"
    " ALTER COLUMN tags TYPE varchar(20)[], ALTER COLUMN tags SET DEFAULT '{{}}'",
    "not null dropped": "ALTER TABLE {t}.projects ALTER COLUMN code DROP NOT NULL",
    "unique dropped": "ALTER TABLE {t}.projects DROP CONSTRAINT projects_code_key",
    "wider in the tenant": "ALTER TABLE {t}.projects ALTER COLUMN code TYPE varchar(40)",
    "enum label renamed": "ALTER TYPE {t}.task_status RENAME VALUE 'done' TO 'finished'",
    "extra column": "ALTER TABLE {t}.events ADD COLUMN note text",
    "missing column": "ALTER TABLE {t}.events DROP COLUMN kind",
}


@pytest.fixture
def synced(database_url: URL, engine: Engine) -> dict[str, str]:
    """One tenant per kind, built from the model and then changed; tenant -> kind."""
    metadata = rich_model()
    with engine.begin() as conn:
        metadata.tables["public.plans"].create(conn, checkfirst=True)
    build_with_create_all(engine, metadata, "reference")
    tenants = {f"t{i:02d}": kind for i, kind in enumerate(DRIFTS)}
    with TenantSync(database_url, metadata) as ts:
        for name in tenants:
            assert ts.sync_tenant(name).in_sync, name
    for name in tenants:
        assert differences(engine, name, "reference") == {}, "a signup equals create_all"
    with engine.begin() as conn:
        for name, kind in tenants.items():
            for statement in DRIFTS[kind].split(";"):
                conn.execute(sa.text(statement.format(t=name)))
    for name, kind in tenants.items():
        assert differences(engine, name, "reference") != {}, f"{kind}: the drift made no difference"
    return tenants


def test_each_kind_is_made_equal_to_the_model_or_reported(
    database_url: URL, engine: Engine, synced: dict[str, str]
) -> None:
    metadata = rich_model()
    tenants = list(synced)
    with TenantSync(database_url, metadata, tenants=tenants, verify=True) as ts:
        alone = {r.schema: (r.operations, r.differences) for r in ts.sync_all(dry_run=True).results}
    with TenantSync(database_url, metadata, tenants=tenants) as ts:
        planned = {
            r.schema: (r.operations, r.differences) for r in ts.sync_all(dry_run=True).results
        }
        report = ts.sync_all()
        again = ts.sync_all()

    outcome, wrong = [], []
    for result, second in zip(report.results, again.results, strict=True):
        kind = synced[result.schema]
        left = differences(engine, result.schema, "reference")
        outcome.append(f"{kind:32} {'fixed' if not left else 'reported'}: {result.status}")
        if planned[result.schema] != alone[result.schema]:
            wrong.append(
                f"{kind}: shape plan {planned[result.schema]}, alone {alone[result.schema]}"
            )
        if result.status == "failed":
            wrong.append(f"{kind}: failed: {result.error}")
        elif result.in_sync != (left == {}):
            wrong.append(f"{kind}: reported {result.differences}, left {left}")
        elif second.status != "unchanged" or second.differences != result.differences:
            wrong.append(f"{kind}: a second sync: {second.status} {second.operations}")
    print("\n".join(["", *outcome]))
    assert not wrong, "\n".join(wrong)
    primary_key = next(r for r in report.results if synced[r.schema] == "primary key")
    assert primary_key.differences == [
        "constraint events.events_pkey differs: tenant PRIMARY KEY (id, kind), model PRIMARY KEY"
        " (id) (not changed by tenant_sync: data_dependent)"
    ]


def _drift_at_random(engine: Engine, schema: str, rng: random.Random) -> list[str]:
    """Apply a random handful of DRIFTS to ``schema``; those that clash with an earlier
    one (an index dropped twice, say) are skipped.  Returns the kinds applied."""
    applied = []
    with engine.begin() as conn:
        for kind in rng.sample(sorted(DRIFTS), rng.randint(2, 7)):
            savepoint = conn.begin_nested()
            try:
                for statement in DRIFTS[kind].split(";"):
                    conn.execute(sa.text(statement.format(t=schema)))
                savepoint.commit()
                applied.append(kind)
            except sa.exc.DBAPIError:
                savepoint.rollback()
    return applied


@pytest.mark.parametrize("seed", [1, 2])
def test_random_drift_of_every_kind_ends_equal_to_the_model_or_reported(
    database_url: URL, engine: Engine, seed: int
) -> None:
    metadata = rich_model()
    with engine.begin() as conn:
        metadata.tables["public.plans"].create(conn, checkfirst=True)
    build_with_create_all(engine, metadata, "reference")
    rng = random.Random(seed)
    names = [f"r{i}" for i in range(8)]
    with TenantSync(database_url, metadata) as ts:
        for name in names:
            ts.sync_tenant(name)
    drifts = {name: _drift_at_random(engine, name, rng) for name in names}
    with TenantSync(database_url, metadata, tenants=names) as ts:
        report = ts.sync_all()
        again = ts.sync_all()
    for result, second in zip(report.results, again.results, strict=True):
        left = differences(engine, result.schema, "reference")
        context = f"seed {seed}, {result.schema} after {drifts[result.schema]}"
        assert result.status != "failed", f"{context}: {result.error}"
        assert result.in_sync == (left == {}), f"{context}: said {result.differences}, left {left}"
        assert second.status == "unchanged", f"{context}: ran again {second.operations}"
