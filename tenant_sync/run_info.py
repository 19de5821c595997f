"""A run's header: what it is run against and how (:class:`~tenant_sync.report.RunInfo`).

The model is named, in this order of preference:

1. as the caller named it (``model_name=``; the CLI passes ``--model MODULE:ATTR``);
2. a declarative base (a class) as ``its.module:ClassName``;
3. a MetaData (or ``Base.metadata``) as the module global that holds it,
   ``module:metadata`` or ``module:Base.metadata``, the deepest module first (where it is
   defined rather than re-exported); each can be passed to ``--model`` as it is;
4. else by its tables: ``a MetaData of 3 tables (accounts, projects, tasks)``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .classes import CHANGE_CLASSES
from .discovery import SchemaItems, TenantsSpec
from .engine import connect, masked_url
from .model import Model
from .options import SyncOptions
from .report import RunInfo
from .versions import library_versions

__all__ = [
    "describe_model",
    "gather_run_info",
    "new_run_id",
    "option_value",
    "run_options",
    "server_version",
]

#: How many table names the description of an unnamed MetaData lists.
_TABLES_NAMED = 5


def gather_run_info(
    engine: Engine,
    model: Model,
    name: str,
    tenants: TenantsSpec,
    options: SyncOptions,
    dry_run: bool,
    exclude: tuple[str, ...] = (),
) -> RunInfo:
    """The header of a run of ``model`` (called ``name``) on ``engine`` with ``options``."""
    return RunInfo(
        run_id=new_run_id(),
        database=masked_url(engine.url),
        model=name,
        model_fingerprint=model.fingerprint,
        versions={**library_versions(), "postgresql": server_version(engine)},
        options=run_options(options, tenants, dry_run, exclude),
    )


def new_run_id() -> str:
    """A new run's id: what its tenants' history entries name (32 hex digits, random)."""
    return uuid.uuid4().hex


def server_version(engine: Engine) -> str:
    """The server's version, e.g. ``15.4``, as the dialect learnt it when it first connected."""
    info = engine.dialect.server_version_info
    if info is None:  # nothing connected yet: the first connection tells the dialect
        with connect(engine):
            info = engine.dialect.server_version_info
    return ".".join(str(part) for part in info) if info else "unknown"


def run_options(
    options: SyncOptions, tenants: TenantsSpec, dry_run: bool, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The run's options as JSON-ready values, by name; every field of ``options`` included.

    ``allow_destructive`` is true when every class of change applies, which is what
    ``allow_destructive=True`` means (``allow`` then names all four classes).
    """
    values: dict[str, Any] = {
        "dry_run": dry_run,
        "tenants": option_value(tenants),
        "exclude": list(exclude),
    }
    for option in fields(options):
        value = getattr(options, option.name)
        values[option.name] = option_value(value)
        if option.name == "allow":
            values["allow_destructive"] = not callable(value) and set(CHANGE_CLASSES) <= {*value}
    return values


def describe_model(given: object, metadata: sa.MetaData) -> str:
    """How a report names the model ``given`` (a MetaData or a declarative base); see above."""
    if isinstance(given, type):
        return f"{given.__module__}:{given.__qualname__}"
    found = _module_global(metadata)
    if found is not None:
        return found
    names = sorted(metadata.tables)
    shown = ", ".join(names[:_TABLES_NAMED]) + (", ..." if len(names) > _TABLES_NAMED else "")
    return f"a MetaData of {len(names)} tables ({shown})"


def _module_global(metadata: sa.MetaData) -> str | None:
    """``module:attribute`` of a loaded module's global that is ``metadata`` or its Base."""
    found: list[tuple[bool, int, str, str]] = []
    for module, loaded in list(sys.modules.items()):  # a copy: other threads may import
        namespace = getattr(loaded, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            if value is metadata:
                path = attribute
            elif isinstance(value, type) and value.__dict__.get("metadata") is metadata:
                path = f"{attribute}.metadata"
            else:
                continue
            found.append((attribute.startswith("_"), -module.count("."), module, path))
    if not found:
        return None
    _, _, module, path = min(found)
    return f"{module}:{path}"


def option_value(value: object) -> Any:
    """An option as JSON, as a report's header holds it: classes in their order, tuples as lists, a callable by name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, SchemaItems):  # --tenants a,b: as a tenants= string, or a list
        return value.items[0] if len(value.items) == 1 else list(value.items)
    if callable(value):
        return f"callable {_callable_name(value)}"
    if isinstance(value, (set, frozenset)):
        order = {name: number for number, name in enumerate(CHANGE_CLASSES)}
        return sorted(map(str, value), key=lambda item: (order.get(item, len(order)), item))
    if isinstance(value, (list, tuple)):
        return [option_value(item) for item in value]
    return repr(value)


def _callable_name(fn: Callable[..., object]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}" if module else name
