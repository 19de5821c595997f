"""What tenant selection chose: each schema with its rule, the exclusions, the non-tenants.

A selected schema is *probably not a tenant* when it holds tables (views count too) and
none of them is one of the model's: an ``analytics`` or ``reporting`` schema beside the
tenants.  It gets no DDL and is reported ``skipped``, with the reason, unless it was
chosen by its exact name (a ``tenants=`` list, a callable's answer, a name given as
``tenants=`` or as a ``--tenants`` item).  An empty schema is a tenant: that is what a
signup looks like.  The rule reads only relation names, which the catalog pass has
already read (:attr:`~tenant_sync.fastpath.catalog.Shape.relations`);
:func:`read_relations` reads them, in one query, for schemas the pass did not read.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from .engine import connect
from .errors import DiscoveryError
from .failures import failure_message
from .report import TenantResult
from .sql import read_query

__all__ = [
    "Excluded",
    "Rule",
    "Selected",
    "Selection",
    "not_a_tenant_reason",
    "not_tenants_among",
    "read_relations",
    "some_names",
    "vet",
]

#: How a schema was selected: ``every`` (no ``tenants``), ``name`` (by its exact name, in
#: a list or as an item), ``pattern`` (a LIKE pattern matched it), ``callable`` (the
#: ``tenants`` callable returned it).
Rule = Literal["every", "name", "pattern", "callable"]

#: The relations of each schema the catalog pass did not read.
_RELATIONS_SQL = read_query("tenant_sync", "schema_relations.sql")

# A run's warnings stay under the run's logger name, whichever module writes them.
log = logging.getLogger("tenant_sync.coordinator")

# How many of a non-tenant's relations its reason names.
_NAMED = 3


@dataclass(frozen=True)
class Selected:
    """One selected schema and the rule that selected it.

    :ivar schema: the schema.
    :ivar rule: ``every``, ``name``, ``pattern`` or ``callable`` (see :data:`Rule`).
    :ivar item: the pattern that matched (``pattern``), or the callable's name.
    """

    schema: str
    rule: Rule
    item: str | None = None

    @property
    def explicit(self) -> bool:
        """True when the schema was chosen by name: the not-a-tenant rule spares it."""
        return self.rule in ("name", "callable")


@dataclass(frozen=True)
class Excluded:
    """A selected schema that an ``exclude`` item left out.

    :ivar selected: the schema and the rule that selected it.
    :ivar item: the first ``exclude`` item that names or matches it.
    """

    selected: Selected
    item: str

    @property
    def schema(self) -> str:
        """The excluded schema."""
        return self.selected.schema


@dataclass(frozen=True)
class Selection:
    """Which schemas ``tenants`` and ``exclude`` select, and why.

    :ivar tenants: the selected schemas, exclusions removed, in the order they are synced.
    :ivar excluded: the selected schemas that ``exclude`` left out.
    :ivar not_tenants: of ``tenants``, those that look like no tenant, each with the
        relations it holds (none of them the model's); they get no DDL and are reported
        ``skipped``.  Filled in once their relations are known.
    :ivar unmatched: the ``tenants`` and ``exclude`` items that select nothing, in words
        (``tenants item 'x' matches no schema``): a run warns about each, once.
    """

    tenants: tuple[Selected, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    not_tenants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """The selected schemas' names (not-tenants included: they are reported)."""
        return [choice.schema for choice in self.tenants]

    @property
    def unvetted(self) -> list[str]:
        """The selected schemas the not-a-tenant rule applies to: not chosen by name."""
        return [choice.schema for choice in self.tenants if not choice.explicit]

    def reason(self, schema: str) -> str | None:
        """Why ``schema`` is not treated as a tenant, or None if it is one."""
        relations = self.not_tenants.get(schema)
        return None if relations is None else not_a_tenant_reason(relations)

    def skipped(self, schema: str) -> TenantResult | None:
        """The ``skipped`` result of ``schema`` if it looks like no tenant, else None."""
        reason = self.reason(schema)
        return None if reason is None else TenantResult(schema, "skipped", error=reason, attempts=0)

    def only(self, names: Sequence[str]) -> Selection:
        """This selection narrowed to ``names`` (some of its tenants), in their order."""
        chosen = {choice.schema: choice for choice in self.tenants}
        return replace(self, tenants=tuple(chosen[name] for name in names))

    def vetted(
        self, relations: Mapping[str, Sequence[str]], model_tables: Iterable[str]
    ) -> Selection:
        """This selection with the non-tenants among ``relations`` (the relations each of
        some schemas holds) added to those it knows.

        Only :attr:`unvetted` schemas are judged: one chosen by name is a tenant.
        """
        unvetted = {name: relations[name] for name in self.unvetted if name in relations}
        found = not_tenants_among(unvetted, model_tables)
        return replace(self, not_tenants={**self.not_tenants, **found})


def vet(
    engine: Engine,
    selection: Selection,
    read: Mapping[str, Sequence[str]],
    model_tables: Iterable[str],
    ignored: Sequence[str],
    among: Collection[str] | None = None,
    warn: bool = False,
) -> Selection:
    """``selection`` with its non-tenants, judged by the relations each schema holds.

    ``read`` has the relations the catalog pass read; the schemas it lacks (all of them
    with ``verify=True``, or for ``tenant-sync list``) are asked in one query.  Given
    ``among`` (a chunk of the pass), only those schemas are judged.  With ``warn``, each
    non-tenant found now is named in a warning.
    """
    chunk = None if among is None else set(among)  # a set: a chunk has thousands of names
    judged = [name for name in selection.unvetted if chunk is None or name in chunk]
    relations = {name: read[name] for name in judged if name in read}
    unread = [name for name in judged if name not in read]
    if unread:
        with connect(engine) as conn, conn.begin():
            relations.update(read_relations(conn, unread, ignored))
    vetted = selection.vetted(relations, model_tables)
    for name in vetted.not_tenants if warn else ():
        if name not in selection.not_tenants:
            log.warning("schema %s %s", name, vetted.reason(name))
    return vetted


def not_tenants_among(
    relations: Mapping[str, Sequence[str]], model_tables: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """The schemas of ``relations`` that hold relations but none named like a model table."""
    known = set(model_tables)
    return {
        schema: tuple(names)
        for schema, names in relations.items()
        if names and known.isdisjoint(names)
    }


def not_a_tenant_reason(relations: Sequence[str]) -> str:
    """Why a schema that holds ``relations`` is not treated as a tenant, in one line."""
    tables = "table" if len(relations) == 1 else "tables"
    return (
        f"holds {len(relations)} {tables} the model does not know"
        f" ({some_names(relations)}) and none of the model's tables; not treated as a tenant"
        " (name it in --tenants / tenants= to sync it)"
    )


def some_names(names: Sequence[str]) -> str:
    """The first few of ``names``, comma-separated, with ``...`` when there are more."""
    return ", ".join(names[:_NAMED]) + (", ..." if len(names) > _NAMED else "")


def read_relations(
    conn: Connection, schemas: Sequence[str], ignored: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """The relation names of each of ``schemas`` that exists, bookkeeping tables left out.

    :raises DiscoveryError: the query failed (the run cannot tell tenants apart).
    """
    if not schemas:
        return {}
    parameters = {"schemas": list(schemas), "ignored": list(ignored)}
    try:
        rows = conn.execute(sa.text(_RELATIONS_SQL), parameters).all()
    except DBAPIError as exc:
        raise DiscoveryError(
            f"reading which tables {len(schemas)} schemas hold failed: {failure_message(exc)}"
        ) from exc
    return {name: tuple(relations or ()) for name, relations in rows}
