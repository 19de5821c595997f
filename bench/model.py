"""The benchmark's model: 20 tenant tables (v1), v2 = v1 + 5 columns, 1 index, 1 table.

Also the raw DDL of each change as plain SQL strings, compiled from the same model
objects with the PostgreSQL dialect.  Names are unqualified: the statements run under
``SET LOCAL search_path`` in the tenant, so they are the DDL Alembic would run.

The model is meant to look like a SaaS application's: enum types, JSONB, numerics,
server defaults, foreign keys (with ``ON DELETE``), composite and unique constraints,
secondary indexes, and a naming convention, as most applications have one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = [
    "DRIFT",
    "V2_COLUMNS",
    "V2_INDEX",
    "V2_TABLE",
    "Drift",
    "build_ddl",
    "change_ddl",
    "model_v1",
    "model_v2",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The 5 nullable columns v2 adds, as (table, column name).
V2_COLUMNS = (
    ("users", "locale"),
    ("projects", "budget"),
    ("tasks", "due_on"),
    ("invoices", "extra"),
    ("events", "client_ip"),
)
#: The index v2 adds.
V2_INDEX = "ix_tasks_due_on"
#: The table v2 adds.
V2_TABLE = "task_checklist_items"


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _fk(target: str, nullable: bool = False, ondelete: str | None = None) -> sa.Column[int]:
    table = target.split(".")[0]
    return sa.Column(
        f"{table.removesuffix('s')}_id",
        sa.Integer,
        sa.ForeignKey(target, ondelete=ondelete),
        nullable=nullable,
    )


def model_v1() -> sa.MetaData:
    """The 20 tenant tables of v1, in a fresh MetaData."""
    md = sa.MetaData(naming_convention=NAMING_CONVENTION)
    role = sa.Enum("owner", "admin", "member", "guest", name="user_role")
    task_status = sa.Enum("open", "in_progress", "done", "archived", name="task_status")
    invoice_status = sa.Enum("draft", "sent", "paid", "void", name="invoice_status")

    sa.Table(
        "accounts",
        md,
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(60), nullable=False, unique=True),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False, server_default="0"),
        sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("trial", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
        comment="customer accounts",
    )
    sa.Table(
        "users",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("full_name", sa.String(200)),
        sa.Column("role", role, nullable=False, server_default="member"),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        _created_at(),
        sa.UniqueConstraint("account_id", "email"),
    )
    sa.Table(
        "teams",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text),
        _created_at(),
    )
    sa.Table(
        "team_members",
        md,
        sa.Column(
            "team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("is_lead", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("joined_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    sa.Table(
        "projects",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        _fk("teams.id", nullable=True),
        sa.Column("name", sa.String(100), nullable=False, comment="shown in the UI"),
        sa.Column("key", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("settings", JSONB),
        _created_at(),
        sa.UniqueConstraint("account_id", "key"),
    )
    sa.Table(
        "tasks",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        _fk("projects.id", ondelete="CASCADE"),
        sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("status", task_status, nullable=False, server_default="open"),
        sa.Column("priority", sa.SmallInteger, nullable=False, server_default="3"),
        sa.Column("estimate_hours", sa.Numeric(6, 1)),
        sa.Column("position", sa.Float),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Index("ix_tasks_project_status", "project_id", "status"),
        sa.Index("ix_tasks_assignee_id", "assignee_id"),
    )
    sa.Table(
        "task_comments",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger,
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("edited", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
    )
    sa.Table(
        "tags",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("color", sa.String(7), nullable=False, server_default="#888888"),
        sa.UniqueConstraint("account_id", "name"),
    )
    sa.Table(
        "task_tags",
        md,
        sa.Column(
            "task_id",
            sa.BigInteger,
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id", sa.Integer, sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    sa.Table(
        "attachments",
        md,
        sa.Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column(
            "task_id",
            sa.BigInteger,
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100)),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("checksum", sa.LargeBinary),
        _created_at(),
    )
    sa.Table(
        "products",
        md,
        _id(),
        sa.Column("sku", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("attributes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    sa.Table(
        "prices",
        md,
        _id(),
        _fk("products.id", ondelete="CASCADE"),
        sa.Column("currency", sa.String(3), nullable=False, server_default="EUR"),
        sa.Column("amount", sa.Numeric(12, 4), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False, server_default=sa.func.current_date()),
        sa.Column("valid_to", sa.Date),
        sa.CheckConstraint("amount >= 0", name="amount_positive"),
        sa.Index("ix_prices_product_id_valid_from", "product_id", "valid_from"),
    )
    sa.Table(
        "subscriptions",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        _fk("prices.id"),
        sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    sa.Table(
        "invoices",
        md,
        _id(),
        _fk("accounts.id"),
        sa.Column("number", sa.String(30), nullable=False, unique=True),
        sa.Column("status", invoice_status, nullable=False, server_default="draft"),
        sa.Column("issued_on", sa.Date),
        sa.Column("due_on", sa.Date),
        sa.Column("total", sa.Numeric(14, 2), nullable=False, server_default="0"),
        sa.Column("tax_rate", sa.Numeric(5, 4), nullable=False, server_default="0.2"),
        _created_at(),
        sa.Index("ix_invoices_account_id_status", "account_id", "status"),
    )
    sa.Table(
        "invoice_lines",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        _fk("invoices.id", ondelete="CASCADE"),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id")),
        sa.Column("description", sa.String(300), nullable=False),
        sa.Column("quantity", sa.Numeric(10, 3), nullable=False, server_default="1"),
        sa.Column("unit_price", sa.Numeric(12, 4), nullable=False),
        sa.Index("ix_invoice_lines_invoice_id", "invoice_id"),
    )
    sa.Table(
        "payments",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        _fk("invoices.id"),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("reference", sa.String(100)),
        sa.Column(
            "paid_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("raw", JSONB),
    )
    sa.Table(
        "events",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("subject", sa.String(100)),
        sa.Column("payload", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Index("ix_events_kind_occurred_at", "kind", "occurred_at"),
        comment="audit log",
    )
    sa.Table(
        "notifications",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(20), nullable=False, server_default="email"),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        _created_at(),
        sa.Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )
    sa.Table(
        "api_keys",
        md,
        _id(),
        _fk("users.id", ondelete="CASCADE"),
        sa.Column("prefix", sa.String(12), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(30)), nullable=False, server_default="{}"),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        _created_at(),
    )
    sa.Table(
        "webhooks",
        md,
        _id(),
        _fk("accounts.id", ondelete="CASCADE"),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("events", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("failure_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    assert len(md.tables) == 20, len(md.tables)
    return md


def model_v2() -> sa.MetaData:
    """v1 plus 5 nullable columns on 5 tables, the index ``ix_tasks_due_on`` and a new table."""
    md = model_v1()
    added: dict[str, Any] = {
        "locale": sa.String(10),
        "budget": sa.Numeric(12, 2),
        "due_on": sa.Date,
        "extra": JSONB,
        "client_ip": INET,
    }
    for table, column in V2_COLUMNS:
        md.tables[table].append_column(sa.Column(column, added[column]))
    tasks = md.tables["tasks"]
    sa.Index(V2_INDEX, tasks.c.due_on)
    sa.Table(
        V2_TABLE,
        md,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger,
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        _created_at(),
    )
    return md


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _sql(element: sa.sql.ClauseElement) -> str:
    return str(element.compile(dialect=_DIALECT)).strip()


def _quote(name: str) -> str:
    return _DIALECT.identifier_preparer.quote(name)


def _enums(tables: list[sa.Table]) -> Iterator[sa.Enum]:
    seen: set[str] = set()
    for table in tables:
        for column in table.columns:
            type_ = column.type
            if isinstance(type_, sa.Enum) and type_.name and type_.name not in seen:
                seen.add(type_.name)
                yield type_


def _create_tables(tables: list[sa.Table]) -> list[str]:
    statements = [
        _sql(CreateEnumType(postgresql.ENUM(*e.enums, name=e.name))) for e in _enums(tables)
    ]
    for table in tables:
        statements.append(_sql(CreateTable(table)))
        statements += [
            _sql(CreateIndex(i)) for i in sorted(table.indexes, key=lambda i: str(i.name))
        ]
    return statements


def _add_column(column: sa.Column[object]) -> str:
    compiler = _DIALECT.ddl_compiler(_DIALECT, None)  # type: ignore[arg-type]
    spec = compiler.get_column_specification(column)  # type: ignore[no-untyped-call]
    return f"ALTER TABLE {_quote(column.table.name)} ADD COLUMN {spec}"


def build_ddl(md: sa.MetaData) -> list[str]:
    """The statements that build ``md`` in an empty tenant: enum types, tables, indexes."""
    return _create_tables(list(md.sorted_tables))


def change_ddl() -> list[str]:
    """The statements that take a v1 tenant to v2: 5 ADD COLUMN, 1 CREATE INDEX, 1 table."""
    v2 = model_v2()
    statements = [_add_column(v2.tables[table].c[column]) for table, column in V2_COLUMNS]
    index = next(i for i in v2.tables["tasks"].indexes if i.name == V2_INDEX)
    statements.append(_sql(CreateIndex(index)))
    statements += _create_tables([v2.tables[V2_TABLE]])
    return statements


@dataclass(frozen=True)
class Drift:
    """Out-of-band damage to a v2 tenant (``damage``) and the DDL that repairs it (``repair``)."""

    every: int
    damage: tuple[str, ...]
    repair: tuple[str, ...]

    def drifted(self, tenants: list[str]) -> list[str]:
        """The tenants that drift: one in ``every``, starting with the first."""
        return tenants[:: self.every]


def _drift() -> Drift:
    v2 = model_v2()
    locale = v2.tables["users"].c.locale
    index = next(i for i in v2.tables["tasks"].indexes if i.name == V2_INDEX)
    return Drift(
        every=100,
        damage=(
            f"DROP INDEX IF EXISTS {_quote(V2_INDEX)}",
            "ALTER TABLE users DROP COLUMN IF EXISTS locale",
        ),
        repair=(_add_column(locale), _sql(CreateIndex(index))),
    )


#: The drift scenario: 1 % of the tenants lost the v2 index and a v2 column.
DRIFT = _drift()
