"""The application's model as tenant_sync sees it: tenant tables, shared tables, a fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from .errors import ConfigurationError

__all__ = ["Model"]


class Model:
    """A validated view of a :class:`~sqlalchemy.schema.MetaData`.

    Tables with ``schema=None`` are *tenant tables*: every tenant schema gets them.
    Tables with an explicit schema (``public.plans``) are *shared*: tenant_sync never
    creates or alters them, but tenant tables may reference them by foreign key.

    Accepts a MetaData or a declarative base (anything with a ``.metadata``).
    """

    def __init__(self, metadata: sa.MetaData | Any) -> None:
        self.metadata = _as_metadata(metadata)
        tables = list(self.metadata.tables.values())
        if not tables:
            raise ConfigurationError("the metadata has no tables; nothing to sync")
        self.tenant_tables = [table for table in tables if table.schema is None]
        if not self.tenant_tables:
            raise ConfigurationError(
                "the metadata has only tables with an explicit schema; tenant tables must "
                "have schema=None so each tenant gets its own copy"
            )
        #: The tenant tables' names, which the not-a-tenant rule looks for in a schema.
        self.tenant_table_names = frozenset(table.name for table in self.tenant_tables)
        self.shared_schemas = frozenset(table.schema for table in tables if table.schema)
        self.fingerprint = _fingerprint(self.tenant_tables)

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        """Alembic filter: leave shared tables (explicit schema) out of every tenant's diff.

        A generated column that both sides have is left out too: autogenerate cannot
        alter one (it only warns); the yardstick reports a difference in it.
        """
        if type_ == "column" and compare_to is not None and obj.computed is not None:
            return False
        return not (type_ == "table" and not reflected and obj.schema is not None)


def _as_metadata(value: object) -> sa.MetaData:
    if isinstance(value, sa.MetaData):
        return value
    metadata = getattr(value, "metadata", None)
    if isinstance(metadata, sa.MetaData):
        return metadata
    raise ConfigurationError(
        f"expected a SQLAlchemy MetaData or a declarative base, got {type(value).__name__}"
    )


def _fingerprint(tables: list[sa.Table]) -> str:
    """A short hash of the tenant tables' DDL: equal for equal models, in any process."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    digest = hashlib.sha256()
    for table in sorted(tables, key=lambda t: t.name):
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
        for column in table.columns:
            digest.update(
                repr((column.name, column.comment, getattr(column.type, "enums", None))).encode()
            )
        digest.update(repr(table.comment).encode())
    return digest.hexdigest()[:32]
