"""The plan as a reader wants it: each distinct change set once, with the tenants it applies to.

``tenant-sync plan`` and ``tenant-sync drift`` print this before the counts::

    Change set 1: 1,198 tenants (tenant_0001, tenant_0002, tenant_0003, ...)
      [safe]            add column invoices.currency VARCHAR(3)
      [data_dependent]  set NOT NULL on invoices.due_date
      still differs:    drop column invoices.legacy (withheld: destructive)

Tenants with the same operations, withheld changes and differences share a change set;
tenants with nothing to do and nothing that differs are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..report import TenantResult

__all__ = ["ChangeSetView", "format_change_sets", "group_change_sets"]

#: How many tenant names a change set's heading shows.
NAMES_SHOWN = 3


@dataclass
class ChangeSetView:
    """One distinct change set of a report, and the tenants whose results show it."""

    operations: tuple[str, ...]
    classes: tuple[str, ...]
    sql: tuple[str, ...]
    differences: tuple[str, ...]
    errors: dict[str, str | None] = field(default_factory=dict)

    @property
    def tenants(self) -> list[str]:
        """The tenants of this change set, in report order."""
        return list(self.errors)


def group_change_sets(results: Iterable[TenantResult]) -> list[ChangeSetView]:
    """The distinct change sets of tenants with something to do or something that differs."""
    groups: dict[tuple[tuple[str, ...], ...], ChangeSetView] = {}
    for result in results:
        if not result.operations and not result.differences:
            continue
        key = (tuple(result.operations), tuple(result.classes), tuple(result.differences))
        view = groups.get(key)
        if view is None:
            view = groups[key] = ChangeSetView(
                tuple(result.operations),
                tuple(result.classes),
                tuple(result.sql),
                tuple(result.differences),
            )
        view.errors[result.name] = result.error if result.status == "failed" else None
    return sorted(groups.values(), key=lambda view: -len(view.errors))


def format_change_sets(results: Sequence[TenantResult], with_sql: bool = False) -> str:
    """Every distinct change set with its tenant count, first names, operations and classes.

    A tenant that would fail is named with its error under its change set.
    """
    blocks = []
    for number, view in enumerate(group_change_sets(results), start=1):
        names = view.tenants
        shown = ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")
        count = f"{len(names):,} tenant" + ("" if len(names) == 1 else "s")
        lines = [f"Change set {number}: {count} ({shown})"]
        width = len("[data_dependent]")
        for operation, change_class in zip(view.operations, view.classes, strict=False):
            lines.append(f"  {'[' + change_class + ']':<{width}}  {operation}")
        lines.extend(f"  {'still differs:':<{width}}  {text}" for text in view.differences)
        failing = [(name, error) for name, error in view.errors.items() if error]
        if failing:
            lines.append(f"  would fail in {len(failing):,} of {count}:")
            lines.extend(f"    {name}: {error}" for name, error in failing[:10])
            if len(failing) > 10:
                lines.append(f"    ... and {len(failing) - 10:,} more")
        if with_sql and view.sql:
            lines.append("  SQL:")
            lines.extend(f"    {line}" for statement in view.sql for line in _statement(statement))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n\n" if blocks else "")


def _statement(sql: str) -> list[str]:
    text = sql.strip()
    return (text if text.endswith(";") else text + ";").splitlines()
