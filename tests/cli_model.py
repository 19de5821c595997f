"""A model module for the CLI tests, imported by ``tenant-sync --model cli_model:...``.

``metadata_v1`` and ``metadata_v2`` are the sample models of ``models.py``; ``Base`` is a
declarative base with mapped classes; ``not_a_model`` is for the error test.
"""

from __future__ import annotations

import sqlalchemy as sa
from models import ledger_model, model_v1, model_v2
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenant_sync import Steps

metadata_v1 = model_v1()
metadata_v2 = model_v2()
not_a_model = 42

# Version 2 of the ledger model, with a default so that its NOT NULL column applies to rows.
ledger_v2 = ledger_model(2)
ledger_v2.tables["entries"].c.booked.server_default = sa.DefaultClause(sa.false())


class Base(DeclarativeBase):
    """A declarative base, as an application would name it in ``--model``."""


class Customer(Base):
    """A tenant table: every tenant gets its own ``customers``."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200), unique=True)


class Invoice(Base):
    """A tenant table referencing another."""

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    total: Mapped[int] = mapped_column(server_default="0")


# Data steps for ``--steps cli_model:steps``: a seed row at signup, and one that only
# older tenants would run.
steps = Steps()


@steps.step("seed the first customer", on_signup="run")
def seed_customer(conn: sa.Connection, tenant: object) -> None:
    conn.execute(sa.text("INSERT INTO customers (email) VALUES ('owner@example.com')"))


@steps.step("backfill something old tenants lack")
def backfill(conn: sa.Connection, tenant: object) -> None:
    raise AssertionError("a new tenant records this step without running it")
