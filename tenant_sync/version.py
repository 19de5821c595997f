"""The version table in each tenant: the fingerprint of the model it was last synced to.

It has the shape of Alembic's own version table (one ``version_num`` column) so
``MigrationContext.get_current_revision()`` reads it; its default name,
``tenant_sync_version``, keeps it apart from an ``alembic_version`` table a tenant may
already have from hand-written migrations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

__all__ = ["read_version", "write_version"]


def read_version(context: MigrationContext) -> str | None:
    """The fingerprint recorded in the tenant, or None when there is none yet."""
    return context.get_current_revision()


def write_version(conn: Connection, schema: str, table_name: str, fingerprint: str) -> None:
    """Record ``fingerprint`` as the tenant's version, creating the table if needed."""
    table = _version_table(schema, table_name)
    table.create(conn, checkfirst=True)
    conn.execute(table.delete())
    conn.execute(table.insert().values(version_num=fingerprint))


def _version_table(schema: str, table_name: str) -> sa.Table:
    return sa.Table(
        table_name,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{table_name}_pkc"),
        schema=schema,
    )
