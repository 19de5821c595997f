"""A demo: a sample model synced into a handful of tenants, then a model change.

Run it with ``python -m tenant_sync.demo [URL]``.  It works in a database of its own,
``tenant_sync_demo``, created on the server the URL names (default: the local
server, or ``TENANT_SYNC_DATABASE_URL``) and dropped at the end.
"""

from __future__ import annotations

import os
import sys

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .coordinator import TenantSync
from .engine import connect
from .errors import TenantSyncError
from .report import SyncReport

__all__ = ["DEFAULT_SERVER_URL", "demo_model", "main", "run_demo"]

DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE = "tenant_sync_demo"
DEMO_TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


def demo_model(version: int) -> sa.MetaData:
    """The sample model: version 1, or version 2 with a new column, index and table."""
    metadata = sa.MetaData()
    sa.Table(
        "plans",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        schema="public",
    )
    projects = sa.Table(
        "projects",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("public.plans.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    sa.Table(
        "tasks",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.Enum("open", "done", name="task_status"), server_default="open"),
    )
    if version >= 2:
        projects.append_column(sa.Column("description", sa.Text))
        sa.Index("ix_projects_created_at", projects.c.created_at)
        sa.Table(
            "comments",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("task_id", sa.Integer, sa.ForeignKey("tasks.id"), nullable=False),
            sa.Column("body", sa.Text, nullable=False),
        )
    return metadata


def run_demo(server_url: str | URL) -> tuple[SyncReport, SyncReport]:
    """Build the demo tenants at model v1, then sync them to v2; return both reports."""
    database_url = _fresh_database(sa.make_url(server_url))
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY, name text NOT NULL)")
            )
        with TenantSync(engine, demo_model(1)) as ts:
            for name in DEMO_TENANTS:
                ts.sync_tenant(name)  # signup: create and build
        with TenantSync(engine, demo_model(2), workers=4) as ts:
            plan = ts.sync_all(dry_run=True)
            report = ts.sync_all()
        return plan, report
    finally:
        engine.dispose()
        _drop_database(sa.make_url(server_url), DEMO_DATABASE)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print what happened; exit code 0 when every tenant synced."""
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get("TENANT_SYNC_DATABASE_URL", DEFAULT_SERVER_URL)
    try:
        plan, report = run_demo(url)
    except TenantSyncError as exc:
        print(f"tenant_sync demo: {exc}", file=sys.stderr)
        return 2
    print("Plan (dry run) for the first tenant:")
    first = plan.results[0]
    for operation in first.operations:
        print(f"  {first.schema}: {operation}")
    print()
    for result in report.results:
        print(
            f"  {result.schema:<10} {result.status:<9} {len(result.operations)} operations  {result.duration_s * 1000:.0f} ms"
        )
    print(report.summary())
    return 0 if report.ok else 1


def _fresh_database(server_url: URL) -> URL:
    _drop_database(server_url, DEMO_DATABASE)
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with connect(admin) as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{DEMO_DATABASE}"'))
    return server_url.set(database=DEMO_DATABASE)


def _drop_database(server_url: URL, name: str) -> None:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with connect(admin) as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    raise SystemExit(main())
