"""The memo: a tenant's stamp and fingerprint, left by the round trip that changed it.

Rendering a tenant's fingerprint is most of the catalog pass's cost; its stamp (a
digest of its catalog rows' versions, see ``stamp.sql``) takes under half as long.  So
a round trip that leaves a tenant equal to the model ends by recording both, as the
comment of the tenant's version table::

    tenant_sync shape 412:91783452671234 6f1e0c...

and the next catalog pass renders the tenant's text only if its stamp no longer equals
the memo's.  A memo is never trusted beyond its stamp: any change to any catalog row of
the tenant since, by tenant_sync or anyone else, gives it another stamp, and the pass
then reads the tenant in full, as it would without a memo.

The fingerprint a trip records is not rendered (that would cost what the memo saves):
it is a digest of the fingerprint the tenant had and the SQL the trip ran.  Two tenants
of one shape that ran the same SQL have the same structure, so they share it; a tenant
of the same structure reached another way has another fingerprint, which costs one
more comparison with the model, never a wrong plan.  The comment needs ownership of the
version table: a role that does not own it leaves no memo, and that tenant is read in
full on every pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..sql import literal, quote
from .catalog import do_statement, stamp_block

__all__ = ["MEMO_PREFIX", "memo_statement", "next_fingerprint"]

#: How a memo comment begins; the pass reads ``MEMO_PREFIX STAMP FINGERPRINT``.
MEMO_PREFIX = "tenant_sync shape"


def next_fingerprint(fingerprint: str, sql: Sequence[str]) -> str:
    """The fingerprint of a tenant of ``fingerprint`` once ``sql`` has run in it."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(fingerprint.encode())
    for statement in sql:
        digest.update(b"\n" + statement.encode())
    return digest.hexdigest()


def memo_statement(
    schema: str, version_table: str, fingerprint: str, ignored: Sequence[str]
) -> str:
    """A ``DO`` statement that records ``schema``'s stamp, as it is now in the
    transaction, and ``fingerprint`` on its version table, if the role owns the table.

    Runs last in the tenant's transaction, after every change to it."""
    table = literal(f"{quote(schema)}.{quote(version_table)}")
    return do_statement(
        f"""DECLARE
    stamp text;
    owner oid := (SELECT relowner FROM pg_catalog.pg_class
        WHERE oid = pg_catalog.to_regclass({table}));
BEGIN
    IF owner IS NULL OR NOT pg_catalog.pg_has_role(owner, 'USAGE') THEN
        RETURN;
    END IF;
    {stamp_block(schema, ignored)}
    EXECUTE 'COMMENT ON TABLE ' || {table} || ' IS '
        || pg_catalog.quote_literal({literal(MEMO_PREFIX + " ")} || stamp || ' ' || {literal(fingerprint)});
END"""
    )
