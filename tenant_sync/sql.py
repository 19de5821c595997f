"""Quoting for SQL that tenant_sync writes itself: identifiers and string literals.

Both are plain SQL, right as bound values and in statements sent without parameters
(a batch in one round trip): unlike SQLAlchemy's preparer, ``%`` is not doubled.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files

__all__ = ["MAX_IDENTIFIER_BYTES", "literal", "quote", "read_query", "text_array"]

#: PostgreSQL truncates identifiers longer than this many bytes.
MAX_IDENTIFIER_BYTES = 63


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


def text_array(values: Iterable[str]) -> str:
    """``values`` as a PostgreSQL ``text[]`` of literals (see :func:`literal`)."""
    return f"CAST(ARRAY[{', '.join(literal(value) for value in values)}] AS text[])"


def read_query(package: str, name: str) -> str:
    """The query in file ``name`` of ``package``, as sent: its leading comment block left out.

    The comment is for readers of the file; the server need not parse it on every call.
    """
    text = files(package).joinpath(name).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "".join(lines)
