"""The version table in each tenant: the fingerprint of the model it was last synced to.

It has the shape of Alembic's own version table (one ``version_num`` column) so
``MigrationContext.get_current_revision()`` reads it; its default name,
``tenant_sync_version``, keeps it apart from an ``alembic_version`` table a tenant may
already have from hand-written migrations.
"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext

from .sql import quote

__all__ = ["read_version", "version_statements"]


def read_version(context: MigrationContext) -> str | None:
    """The fingerprint recorded in the tenant, or None when there is none yet."""
    return context.get_current_revision()


def version_statements(
    schema: str, table_name: str, fingerprint: str, *, create: bool = True
) -> list[str]:
    """SQL that records ``fingerprint`` as the tenant's version (creating the table if asked)."""
    if not all(char in "0123456789abcdef" for char in fingerprint):
        raise ValueError(f"not a hex fingerprint: {fingerprint!r}")
    table = f"{quote(schema)}.{quote(table_name)}"
    statements = [
        f"DELETE FROM {table}",
        f"INSERT INTO {table} (version_num) VALUES ('{fingerprint}')",
    ]
    if create:
        constraint = quote(f"{table_name}_pkc")
        statements.insert(
            0,
            f"CREATE TABLE IF NOT EXISTS {table} (version_num VARCHAR(32) NOT NULL,"
            f" CONSTRAINT {constraint} PRIMARY KEY (version_num))",
        )
    return statements
