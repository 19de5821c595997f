"""Quoting for SQL that tenant_sync writes itself: identifiers and string literals.

Both are plain SQL, right as bound values and in statements sent without parameters
(a batch in one round trip): unlike SQLAlchemy's preparer, ``%`` is not doubled.
"""

from __future__ import annotations

__all__ = ["literal", "quote"]


def quote(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, always, whatever it contains."""
    if "\x00" in name:
        raise ValueError("PostgreSQL identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """``value`` as a PostgreSQL string literal, for SQL sent without parameters.

    The ``E''`` form reads backslashes as escapes whatever ``standard_conforming_strings``
    says, so doubling them (and the quotes) is exact.
    """
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot contain NUL characters")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
