"""List the tenant schemas: all of them, by LIKE pattern, by list, or by callable."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import ConfigurationError, DiscoveryError

__all__ = ["TenantsSpec", "check_tenant_name", "check_tenant_names", "list_tenants"]

#: What ``TenantSync(tenants=...)`` accepts: None (every schema), a LIKE pattern,
#: a list of names, or a callable that gets a connection and returns names.
TenantsSpec = Union[None, str, Sequence[str], Callable[[Connection], Iterable[str]]]  # noqa: UP007

#: PostgreSQL truncates identifiers longer than this many bytes.
MAX_IDENTIFIER_BYTES = 63

_SYSTEM_SCHEMAS = ("public", "information_schema")


def list_tenants(conn: Connection, spec: TenantsSpec, shared_schemas: Iterable[str]) -> list[str]:
    """Return the tenant schema names ``spec`` selects, in a stable order.

    Schemas that hold the model's shared tables are never tenants.  A list is
    returned as given (after checks): names that do not exist fail later, per
    tenant, so the report shows them.
    """
    shared = sorted(set(shared_schemas))
    if spec is None:
        return _query_schemas(conn, "%", excluded=shared)
    if isinstance(spec, str):
        names = _query_schemas(conn, spec, excluded=[])
        clashes = sorted(set(names) & set(shared))
        if clashes:
            raise ConfigurationError(
                f"the model names tenant schema {clashes[0]!r} explicitly (a table with "
                f"schema={clashes[0]!r}); tenant tables must have schema=None"
            )
        return names
    if callable(spec):
        try:
            names = list(spec(conn))
        except Exception as exc:
            raise DiscoveryError(
                f"the tenants callable {_callable_name(spec)} raised {type(exc).__name__}: {exc}"
            ) from exc
        return check_tenant_names(names, shared)
    if isinstance(spec, (list, tuple)):
        return check_tenant_names(list(spec), shared)
    raise ConfigurationError(
        "tenants must be None, a LIKE pattern, a list of schema names or a callable, "
        f"got {type(spec).__name__}"
    )


def check_tenant_names(names: Sequence[object], shared_schemas: Iterable[str] = ()) -> list[str]:
    """Check a list of tenant names and return it; raise ConfigurationError on the first bad one."""
    seen: set[str] = set()
    duplicates: list[str] = []
    shared = set(shared_schemas)
    for name in names:
        checked = check_tenant_name(name)
        if checked in shared:
            raise ConfigurationError(
                f"the model names tenant schema {checked!r} explicitly (a table with "
                f"schema={checked!r}); tenant tables must have schema=None"
            )
        if checked in seen:
            duplicates.append(checked)
        seen.add(checked)
    if duplicates:
        raise ConfigurationError(f"duplicate tenant names: {', '.join(map(repr, duplicates))}")
    return [str(name) for name in names]


def check_tenant_name(name: object) -> str:
    """Return ``name`` if it can be a tenant schema, else raise ConfigurationError."""
    if not isinstance(name, str):
        raise ConfigurationError(f"tenant names must be strings, got {name!r}")
    if not name:
        raise ConfigurationError("tenant name is empty")
    if "\x00" in name:
        raise ConfigurationError(f"tenant name {name!r} contains a NUL character")
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        raise ConfigurationError(
            f"tenant name {name[:20]!r}... is {size} bytes; PostgreSQL allows at most "
            f"{MAX_IDENTIFIER_BYTES}"
        )
    if name in _SYSTEM_SCHEMAS or name.startswith("pg_"):
        raise ConfigurationError(f"{name!r} is a system schema, not a tenant")
    return name


def _query_schemas(conn: Connection, pattern: str, excluded: list[str]) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT nspname FROM pg_catalog.pg_namespace"
            " WHERE nspname LIKE :pattern"
            " AND nspname <> ALL(CAST(:excluded AS text[]))"
            " AND nspname NOT LIKE 'pg\\_%'"
            " ORDER BY nspname"
        ),
        {"pattern": pattern, "excluded": [*_SYSTEM_SCHEMAS, *excluded]},
    )
    return [row[0] for row in rows]


def _callable_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
