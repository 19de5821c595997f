"""A :class:`~tenant_sync.selection.Selection` as text: what ``tenant-sync list`` prints.

::

    tenant_acme     name
    tenant_globex   pattern 'tenant\\_%'
    analytics       every schema (no --tenants) — not a tenant: holds only tables the model does not know (events)
    legacy          every schema (no --tenants) — excluded by --exclude 'leg%'

One line per schema: the tenants in the order a sync takes them, then the excluded
schemas.  The words are the command line's (``--tenants``, ``--exclude``).
"""

from __future__ import annotations

from ..selection import Selected, Selection, some_names
from .summary import printable

__all__ = ["describe_rule", "format_selection"]


def format_selection(selection: Selection, names_only: bool = False) -> str:
    """Every selected and excluded schema with its rule, one a line; ``""`` if there is none.

    With ``names_only``, just the names of the schemas a sync works on: excluded ones and
    those that look like no tenant left out.
    """
    if names_only:
        names = [name for name in selection.names if name not in selection.not_tenants]
        return "".join(f"{printable(name)}\n" for name in names)
    rows = [(choice.schema, _tenant_words(selection, choice)) for choice in selection.tenants]
    rows += [
        (
            gone.schema,
            f"{describe_rule(gone.selected)} — excluded by --exclude {_quoted(gone.item)}",
        )
        for gone in selection.excluded
    ]
    if not rows:
        return ""
    width = max(len(printable(schema)) for schema, _ in rows)
    return "".join(f"{printable(schema):<{width}}  {words}\n" for schema, words in rows)


def describe_rule(choice: Selected) -> str:
    """The rule that selected a schema, in the command line's words."""
    if choice.rule == "every":
        return "every schema (no --tenants)"
    if choice.rule == "pattern":
        return f"pattern {_quoted(choice.item or '')}"
    if choice.rule == "callable":
        return f"callable {choice.item}"
    return "name"


def _tenant_words(selection: Selection, choice: Selected) -> str:
    relations = selection.not_tenants.get(choice.schema)
    if relations is None:
        return describe_rule(choice)
    return (
        f"{describe_rule(choice)} — not a tenant: holds only tables the model does not know"
        f" ({printable(some_names(relations))})"
    )


def _quoted(item: str) -> str:
    return f"'{printable(item)}'"
