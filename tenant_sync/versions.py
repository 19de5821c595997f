"""The versions of tenant_sync and of the libraries whose behaviour a run depends on."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import alembic
import psycopg
import sqlalchemy as sa

__all__ = ["__version__", "library_versions"]

try:
    #: tenant_sync's version, as installed (``pyproject.toml`` is its one source).
    __version__ = version("tenant_sync")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"


def library_versions() -> dict[str, str]:
    """tenant_sync's, Alembic's, SQLAlchemy's and psycopg's versions, by name, as imported."""
    return {
        "tenant_sync": __version__,
        "alembic": alembic.__version__,
        "sqlalchemy": sa.__version__,
        "psycopg": psycopg.__version__,
    }
