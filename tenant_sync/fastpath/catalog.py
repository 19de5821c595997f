"""The catalog pass: every tenant's shape in one linear pass, and the recheck of one tenant.

A tenant's *shape* is everything Alembic's comparison looks at: relations, columns
(type, nullability, default, comment, identity), constraints, indexes, enum types,
comments.  Names that embed the tenant's own schema (``nextval('t1.seq')``,
``REFERENCES t1.accounts``) are written without it, so two tenants built from the same
model have the same fingerprint.  Tenants of one shape get the same diff.

The pass reaches every relation by index lookups, so its cost grows linearly with
the number of tenants (a per-schema scan of pg_class would make it quadratic).  It also
takes each tenant's *stamp*, a digest of its catalog rows' versions, which
:func:`recheck_statement` recomputes cheaply under the tenant's lock.  A tenant whose
stamp equals its memo's (see :mod:`tenant_sync.fastpath.memo`) has the memo's
fingerprint: its text is not rendered.

The queries are in ``shape_pass.sql`` and ``stamp.sql`` beside this module, with the
reasons for their form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..failures import SHAPE_CHANGED
from ..options import HISTORY_TABLE
from ..sql import literal, read_query, text_array

__all__ = [
    "EMPTY_SCHEMA",
    "Shape",
    "do_statement",
    "read_shapes",
    "recheck_statement",
    "stamp_block",
]

#: The fingerprint of a schema without any relation or type.
EMPTY_FINGERPRINT = "empty"

#: The stamp of a schema without any relation or type.
EMPTY_STAMP = "0:0"


@dataclass(frozen=True)
class Shape:
    """One tenant's structure in short: its fingerprint, and what the recheck needs."""

    fingerprint: str
    relations: tuple[str, ...]
    enum_types: tuple[str, ...]
    has_version_table: bool
    #: This tenant's catalog rows at the time of the pass (see :func:`recheck_statement`).
    stamp: str = EMPTY_STAMP
    #: The tables that take the online path (see :mod:`tenant_sync.online`).
    big_tables: frozenset[str] = frozenset()
    #: Whether the tenant has its history table (see :mod:`tenant_sync.history`).
    has_history_table: bool = False


#: The shape of a schema with nothing in it: no relation, no type, no version table.
EMPTY_SCHEMA = Shape(fingerprint="", relations=(), enum_types=(), has_version_table=False)


#: The catalog rows of one relation that a stamp covers, read by the pass per relation.
_RELATION_ROWS = read_query("tenant_sync.fastpath", "relation_rows.sql")

#: Every tenant's shape, fingerprint and stamp; the chunk's schemas bound as a parameter.
_SHAPE_PASS_SQL = read_query("tenant_sync.fastpath", "shape_pass.sql").replace(
    "{relation_rows}", _RELATION_ROWS
)

#: One tenant's stamp, recomputed by the recheck under the tenant's lock.
_STAMP_SQL = read_query("tenant_sync.fastpath", "stamp.sql")


# The recheck runs _STAMP_SQL through a function in the session's own temporary schema,
# made on first use: PL/pgSQL keeps a function's plans for the session, where a DO block
# plans its query anew each time (1.3-1.8 ms a tenant against 0.6 ms, measured).  The
# function sets its own search_path, or the plan would be made again for every tenant,
# each of which sets search_path to itself.  The name carries a digest of the
# definition, so two versions of tenant_sync never share one.  A role without the
# TEMPORARY privilege runs the query itself, planned each time.  Made inside the
# tenant's transaction, the function goes when that rolls back, and is made again.
_STAMP_FUNCTION = (
    "pg_temp.tenant_sync_stamp_" + hashlib.sha256(_STAMP_SQL.encode()).hexdigest()[:12]
)
_STAMP_SIGNATURE = f"{_STAMP_FUNCTION}(text, text[])"
_CREATE_STAMP_FUNCTION = (
    f"CREATE FUNCTION {_STAMP_SIGNATURE} RETURNS text LANGUAGE plpgsql STABLE"
    " SET search_path = pg_catalog AS $stamp$BEGIN RETURN (" + _STAMP_SQL + "); END$stamp$"
)
# The constant parts of the recheck, as SQL literals, written once.
_SIGNATURE_LITERAL = literal(_STAMP_SIGNATURE)
_CREATE_LITERAL = literal(_CREATE_STAMP_FUNCTION)
_QUERY_LITERAL = literal(_STAMP_SQL)


def stamp_block(schema: str, ignored: Sequence[str]) -> str:
    """PL/pgSQL statements that set the variable ``stamp`` to ``schema``'s stamp (see
    ``stamp.sql``), through the session's stamp function, made if it is missing."""
    arguments = f"{literal(schema)}, {text_array(ignored)}"
    return f"""IF pg_catalog.to_regprocedure({_SIGNATURE_LITERAL}) IS NOT NULL THEN
        stamp := {_STAMP_FUNCTION}({arguments});
    ELSIF pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMPORARY') THEN
        EXECUTE {_CREATE_LITERAL};
        stamp := {_STAMP_FUNCTION}({arguments});
    ELSE
        EXECUTE {_QUERY_LITERAL} INTO stamp USING {arguments};
    END IF;"""


def read_shapes(
    conn: Connection,
    schemas: Sequence[str],
    ignored: Sequence[str],
    version_table: str,
    min_rows: float | None = None,
) -> dict[str, Shape]:
    """The shape of every named schema that exists, in one query; with ``min_rows``,
    each with its tables of at least that many rows.

    Sets ``search_path`` to ``pg_catalog`` for the rest of the caller's transaction, so
    that every name outside it is rendered qualified and the tenant's prefix stripped.
    """
    # The sort of every item of the chunk stays in memory (tens of MB); compiling this
    # query with JIT took longer than running it.
    conn.execute(
        sa.text(
            "SELECT set_config('search_path', 'pg_catalog', true),"
            " set_config('work_mem', '64MB', true), set_config('jit', 'off', true)"
        )
    )
    rows = conn.execute(
        sa.text(_SHAPE_PASS_SQL),
        {
            "schemas": list(schemas),
            "ignored": list(ignored),
            "version_table": version_table,
            "history_table": HISTORY_TABLE,
            "min_rows": min_rows,
        },
    )
    return {
        name: Shape(
            fingerprint=fingerprint or EMPTY_FINGERPRINT,
            relations=tuple(relations or ()),
            enum_types=tuple(enum_types or ()),
            has_version_table=bool(has_version_table),
            stamp=stamp or EMPTY_STAMP,
            big_tables=frozenset(big_tables or ()),
            has_history_table=bool(has_history),
        )
        for (
            name,
            fingerprint,
            relations,
            enum_types,
            has_version_table,
            stamp,
            big_tables,
            has_history,
        ) in rows
    }


def recheck_statement(schema: str, shape: Shape, ignored: Sequence[str]) -> str:
    """A ``DO`` statement that fails unless ``schema`` is as the catalog pass saw it.

    ``shape`` is the tenant's own, from the pass.  The statement raises
    :data:`~tenant_sync.failures.SHAPE_CHANGED` when the tenant's stamp differs (a catalog row of it
    changed since), or when the schema is gone or the role may not use and create in
    it; the caller then compares the tenant alone, which names the precise problem.
    Meant to run under the tenant's lock, in its transaction.  Values are written in
    as literals, so the statement can join a batch sent in one round trip.

    The schema's objects are found through ``pg_depend``, so a relation or type added
    since the pass changes the stamp too: the query stays on catalog indexes however
    many tenants the database holds.  It runs in a session-local function whose plan is
    kept (the function is left in the connection's temporary schema).
    """
    body = f"""DECLARE
    stamp text;
BEGIN
    {stamp_block(schema, ignored)}
    IF stamp IS DISTINCT FROM {literal(shape.stamp)} THEN
        RAISE EXCEPTION USING ERRCODE = '{SHAPE_CHANGED}',
            MESSAGE = 'tenant changed since the catalog pass';
    END IF;
END"""
    return do_statement(body)


def do_statement(body: str) -> str:
    """``DO`` with ``body`` between dollar quotes it does not contain."""
    return f"DO {_dollar_quoted(body)}"


def _dollar_quoted(body: str) -> str:
    """``body`` between dollar quotes whose tag it does not contain (names may hold ``$``)."""
    tag, number = "$tenant_sync$", 0
    while tag in body:
        number += 1
        tag = f"$tenant_sync{number}$"
    return f"{tag}{body}{tag}"
