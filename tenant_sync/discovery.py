"""Which schemas are tenants: all, names or LIKE patterns, a list, a callable; less exclusions.

:func:`select_tenants` returns a :class:`~tenant_sync.selection.Selection`: each schema with
the rule that selected it, and each schema an ``exclude`` item left out.  An *item* (a
``--tenants`` or ``--exclude`` value, a ``tenants=`` string, an ``exclude=`` entry) is a
name when a schema of exactly that name exists, and a SQL LIKE pattern otherwise (``_``
and ``%`` are wildcards, ``\\`` escapes them): so ``tenant_acme`` selects that schema
alone, never ``tenantXacme``, while ``tenant\\_%`` selects every ``tenant_...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import ConfigurationError, DiscoveryError
from .selection import Excluded, Selected, Selection
from .sql import MAX_IDENTIFIER_BYTES

__all__ = [
    "ExcludeSpec",
    "SchemaItems",
    "TenantsSpec",
    "check_items",
    "check_tenant_name",
    "check_tenant_names",
    "exclude_items",
    "like_regex",
    "no_match_note",
    "select_tenants",
]


@dataclass(frozen=True)
class SchemaItems:
    """Several items, each a schema name or a LIKE pattern, as ``--tenants a,b`` gives them.

    The schemas they select are listed in the items' order, each pattern's in name order,
    each schema once.  A plain string in ``tenants=`` is one such item.
    """

    items: tuple[str, ...]


#: What ``TenantSync(tenants=...)`` accepts: None (every schema), one item (a name or a
#: LIKE pattern), a list of names, a callable that gets a connection and returns names,
#: or :class:`SchemaItems`.
TenantsSpec = Union[  # noqa: UP007
    None, str, Sequence[str], SchemaItems, Callable[[Connection], Iterable[str]]
]

#: What ``TenantSync(exclude=...)`` accepts: None, one item, or a list of items.
ExcludeSpec = Union[None, str, Sequence[str]]  # noqa: UP007

_SYSTEM_SCHEMAS = ("public", "information_schema")


def select_tenants(
    conn: Connection,
    spec: TenantsSpec,
    exclude: Sequence[str] = (),
    shared_schemas: Iterable[str] = (),
) -> Selection:
    """Return the schemas ``spec`` selects, less those ``exclude`` leaves out, with their rules.

    ``exclude`` is checked items (see :func:`check_items`).  Schemas that hold the model's
    shared tables are never tenants: None leaves them out, a name or pattern that selects
    one (and no ``exclude`` item removes) raises ConfigurationError.  A list is returned
    as given (after checks): names that do not exist fail later, per tenant, so the
    report shows them.  An item that matches nothing is logged as a warning.

    :raises ConfigurationError: a bad name or pattern, or one that selects a shared schema.
    :raises DiscoveryError: a ``tenants`` callable raised.
    """
    shared = sorted(set(shared_schemas))
    existing, owned = _existing_schemas(conn) if _needs_catalog(spec, exclude) else ([], set())
    unmatched: list[str] = []  # the items that select nothing, in words
    if spec is None:
        selected = [Selected(name, "every") for name in _candidates(existing, shared, owned)]
    elif isinstance(spec, (str, SchemaItems)):
        items = check_items([spec] if isinstance(spec, str) else spec.items, "tenants")
        selected = _by_items(items, existing, _candidates(existing, (), owned), unmatched)
    elif callable(spec):
        names = check_tenant_names(_call(spec, conn), shared)
        selected = [Selected(name, "callable", _callable_name(spec)) for name in names]
    elif isinstance(spec, (list, tuple)):
        selected = [Selected(name, "name") for name in check_tenant_names(list(spec), shared)]
    else:
        raise ConfigurationError(
            "tenants must be None, a schema name or LIKE pattern, a list of schema names or "
            f"a callable, got {type(spec).__name__}"
        )
    selection = _exclude(selected, exclude, existing, unmatched)
    _refuse_shared(selection.names, shared)
    return selection


def exclude_items(exclude: ExcludeSpec) -> tuple[str, ...]:
    """``exclude=`` as checked items: None none, a string one, a list its entries."""
    if exclude is None:
        return ()
    if isinstance(exclude, str):
        return check_items([exclude], "exclude")
    if isinstance(exclude, (list, tuple)):
        return check_items(exclude, "exclude")
    raise ConfigurationError(
        "exclude must be None, a schema name or LIKE pattern, or a list of them, "
        f"got {type(exclude).__name__}"
    )


def no_match_note(tenants: TenantsSpec, selection: Selection) -> str:
    """The report's note when nothing is selected: what was asked, how many were excluded."""
    excluded = len(selection.excluded)
    shown = (
        ", ".join(map(repr, tenants.items)) if isinstance(tenants, SchemaItems) else repr(tenants)
    )
    note = f"no tenant schema matched {shown}" if tenants is not None else "no schema found"
    return f"{note} ({excluded} excluded)" if excluded else note


def check_items(items: Iterable[object], option: str) -> tuple[str, ...]:
    """Check names or LIKE patterns given as ``option``; return them, or raise ConfigurationError."""
    checked = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{option} items must be strings, got {item!r}")
        if not item.strip():
            raise ConfigurationError(f"{option}: an item is empty; give a schema name or pattern")
        if "\x00" in item:
            raise ConfigurationError(f"{option} item {item!r} contains a NUL character")
        try:
            like_regex(item)  # raises on a pattern PostgreSQL would refuse
        except ConfigurationError as exc:
            raise ConfigurationError(f"{option}: {exc}") from None
        checked.append(item)
    return tuple(checked)


def like_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression that matches what SQL ``LIKE pattern`` matches (escape ``\\``).

    ``%`` is any run of characters, ``_`` any one character, ``\\`` makes the next
    character literal; the whole name must match (use ``fullmatch``).  Schema names are
    of type ``name``, compared character by character (collation "C"), as here.
    """
    parts: list[str] = []
    characters = iter(pattern)
    for character in characters:
        if character == "\\":
            escaped = next(characters, None)
            if escaped is None:
                raise ConfigurationError(
                    f"LIKE pattern {_quoted(pattern)} ends with the escape character \\;"
                    " write \\\\ for a literal backslash"
                )
            parts.append(re.escape(escaped))
        else:
            parts.append({"%": ".*", "_": "."}.get(character) or re.escape(character))
    return re.compile("".join(parts), re.DOTALL)


def check_tenant_names(names: Sequence[object], shared_schemas: Iterable[str] = ()) -> list[str]:
    """Check a list of tenant names and return it; raise ConfigurationError on the first bad one."""
    seen: set[str] = set()
    duplicates: list[str] = []
    shared = set(shared_schemas)
    for name in names:
        checked = check_tenant_name(name)
        _refuse_shared([checked], shared)
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
    if _is_system(name):
        raise ConfigurationError(f"{name!r} is a system schema, not a tenant")
    return name


def _by_items(
    items: Sequence[str], existing: list[str], candidates: list[str], unmatched: list[str]
) -> list[Selected]:
    """Each item's schemas: the one it names if it exists, else those its pattern matches;
    an item that matches nothing is added to ``unmatched``, in words."""
    known = set(existing)
    chosen: dict[str, Selected] = {}
    for item in items:
        if item in known:
            check_tenant_name(item)  # a system schema named exactly is refused
            # An exact name wins over a pattern that matched the schema before it.
            chosen[item] = Selected(item, "name")
            continue
        regex = like_regex(item)
        matched = [name for name in candidates if regex.fullmatch(name)]
        if not matched:
            unmatched.append(f"tenants item {_quoted(item)} matches no schema")
        for name in matched:
            chosen.setdefault(name, Selected(name, "pattern", item))
    return list(chosen.values())


def _exclude(
    selected: list[Selected], exclude: Sequence[str], existing: list[str], unmatched: list[str]
) -> Selection:
    """Leave out what ``exclude`` names or matches, each with the first item that did."""
    known = set(existing) | {choice.schema for choice in selected}
    rules = [(item, item in known, like_regex(item)) for item in exclude]
    kept: list[Selected] = []
    excluded: list[Excluded] = []
    used: set[str] = set()
    for choice in selected:
        item = next(
            (item for item, exact, regex in rules if _excludes(choice.schema, item, exact, regex)),
            None,
        )
        if item is None:
            kept.append(choice)
        else:
            excluded.append(Excluded(choice, item))
            used.add(item)
    for item in exclude:
        if item not in used:
            unmatched.append(f"exclude item {_quoted(item)} matches no selected schema")
    return Selection(tuple(kept), tuple(excluded), unmatched=tuple(unmatched))


def _excludes(schema: str, item: str, exact: bool, regex: re.Pattern[str]) -> bool:
    return schema == item if exact else regex.fullmatch(schema) is not None


def _refuse_shared(names: Iterable[str], shared: Iterable[str]) -> None:
    clashes = sorted(set(names) & set(shared))
    if clashes:
        raise ConfigurationError(
            f"the model names tenant schema {clashes[0]!r} explicitly (a table with "
            f"schema={clashes[0]!r}); tenant tables must have schema=None"
        )


def _needs_catalog(spec: TenantsSpec, exclude: Sequence[str]) -> bool:
    """Whether the existing schemas must be read: for None, items, or any exclusion."""
    return bool(exclude) or spec is None or isinstance(spec, (str, SchemaItems))


def _existing_schemas(conn: Connection) -> tuple[list[str], set[str]]:
    """Every schema of the database, system schemas included, by name; and those that an
    extension owns (pg_cron's ``cron``, Citus's ``citus``: never a tenant unless named)."""
    # nspname is of type name, whose collation is "C": the order is the same everywhere.
    rows = conn.execute(_SCHEMAS_QUERY).all()
    return [name for name, _ in rows], {name for name, owned in rows if owned}


_SCHEMAS_QUERY = sa.text(
    "SELECT n.nspname, EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
    " WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid"
    " AND d.deptype = 'e') FROM pg_catalog.pg_namespace n ORDER BY n.nspname"
)


def _candidates(existing: Iterable[str], shared: Iterable[str], owned: set[str]) -> list[str]:
    """The schemas that may be tenants: not a system schema, not a shared one, not one
    an extension owns."""
    left_out = set(shared) | owned
    return [name for name in existing if not _is_system(name) and name not in left_out]


def _is_system(name: str) -> bool:
    return name in _SYSTEM_SCHEMAS or name.startswith("pg_")


def _call(spec: Callable[[Connection], Iterable[str]], conn: Connection) -> list[str]:
    try:
        return list(spec(conn))
    except Exception as exc:
        raise DiscoveryError(
            f"the tenants callable {_callable_name(spec)} raised {type(exc).__name__}: {exc}"
        ) from exc


def _callable_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _quoted(item: str) -> str:
    """An item between single quotes, as written on a command line (no backslash doubled)."""
    return f"'{item}'"
