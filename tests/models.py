"""Sample models for the tests: v1, and v2 = v1 plus additive changes.

They cover what idempotence must hold for: enum types, JSONB, numerics, server
defaults, comments, indexes, unique constraints, foreign keys inside the tenant and
to a shared table (``public.plans``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


def _shared(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "plans",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        schema="public",
    )


def model_v1() -> sa.MetaData:
    """Accounts, projects and tasks, with a foreign key to the shared ``public.plans``."""
    metadata = sa.MetaData()
    _shared(metadata)
    status = sa.Enum("open", "done", "archived", name="task_status")
    sa.Table(
        "accounts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("public.plans.id")),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        comment="customer accounts",
    )
    sa.Table(
        "projects",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False, comment="shown in the UI"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.UniqueConstraint("account_id", "name", name="uq_projects_account_name"),
    )
    sa.Table(
        "tasks",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", status, nullable=False, server_default="open"),
        sa.Column("estimate", sa.Numeric(6, 1)),
        sa.Index("ix_tasks_project_status", "project_id", "status"),
    )
    return metadata


def model_v2() -> sa.MetaData:
    """v1 plus a column, an index, an enum column, a table, and a nullable column."""
    metadata = model_v1()
    projects = metadata.tables["projects"]
    projects.append_column(sa.Column("description", sa.Text))
    projects.append_column(
        sa.Column(
            "priority",
            sa.Enum("low", "high", name="priority"),
            nullable=False,
            server_default="low",
        )
    )
    sa.Index("ix_projects_name", projects.c.name)
    sa.Table(
        "labels",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("status", sa.Enum("open", "done", "archived", name="task_status"), nullable=True),
    )
    return metadata


#: The relations a tenant synced to model_v2 holds: its tables and tenant_sync's bookkeeping.
V2_TENANT_TABLES = frozenset(
    {"accounts", "projects", "tasks", "labels", "tenant_sync_version", "tenant_sync_history"}
)


def ledger_model(version: int) -> sa.MetaData:
    """A one-table model whose version 2 has a change of every class (tests/test_classes.py)."""
    metadata = sa.MetaData()
    entries = sa.Table(
        "entries",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("amount", sa.BigInteger if version >= 2 else sa.Integer, nullable=False),
        sa.Column("memo", sa.String(80 if version >= 2 else 40)),
    )
    if version >= 2:
        entries.append_column(sa.Column("note", sa.Text))
        entries.append_column(sa.Column("booked", sa.Boolean, nullable=False))
    else:
        entries.append_column(sa.Column("legacy", sa.Text))
    return metadata
