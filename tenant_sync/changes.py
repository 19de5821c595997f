"""A tenant's changes in words: what runs (with its class and SQL), what is withheld, what differs.

One value for what a plan, a shape's change set, a round trip and a result all carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from .classes import ChangeClass
from .data_checks import DataCheck
from .sql import quote

__all__ = ["Changes", "is_accepted", "strict_failure", "with_schema_created"]


@dataclass(frozen=True)
class Changes:
    """What one tenant needs, in words.

    ``classes`` and ``withheld_classes`` hold the class of each operation and of each
    withheld change, in the same order.  ``differences`` is what still differs from the
    model once the operations have run: each withheld change, with its class, and each
    difference tenant_sync does not change (``unplanned``), unless the user accepted
    it; accepted ones are in ``accepted``.
    """

    operations: tuple[str, ...] = ()
    classes: tuple[ChangeClass, ...] = ()
    sql: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    withheld_classes: tuple[ChangeClass, ...] = ()
    accept: tuple[str, ...] = ()
    #: What a dry run asks each tenant, read-only: would a data-dependent change fail?
    checks: tuple[DataCheck, ...] = ()
    #: What differs from the model, as PostgreSQL shows it, that no operation is about.
    unplanned: tuple[str, ...] = ()
    unplanned_classes: tuple[ChangeClass, ...] = ()
    #: How many withheld changes are rename conflicts, whose row counts each tenant
    #: reads for itself (a shape's change set cannot say them for all its tenants).
    conflicts: int = 0

    @property
    def accepted(self) -> tuple[str, ...]:
        """The withheld changes the user accepted (``accept=``): listed, not warned about."""
        return tuple(
            change
            for change in (*self.withheld, *self.unplanned)
            if is_accepted(change, self.accept)
        )

    @property
    def differences(self) -> tuple[str, ...]:
        """What still differs from the model after the operations run, in words."""
        withheld = (
            f"{change} (withheld: {change_class})"
            for change, change_class in zip(self.withheld, self.withheld_classes, strict=True)
            if not is_accepted(change, self.accept)
        )
        unplanned = (
            f"{change} (not changed by tenant_sync: {change_class})"
            for change, change_class in zip(self.unplanned, self.unplanned_classes, strict=True)
            if not is_accepted(change, self.accept)
        )
        return (*withheld, *unplanned)

    @property
    def reaches_model(self) -> bool:
        """True when the tenant equals the model once the operations have run."""
        return not self.withheld and not self.unplanned

    @property
    def matches_model(self) -> bool:
        """True when there is nothing to run, nothing withheld, and nothing else differs."""
        return not self.operations and not self.withheld and not self.unplanned


def is_accepted(change: str, accept: tuple[str, ...]) -> bool:
    """True when ``change`` (in words) is one of ``accept``, or matches one as a glob pattern."""
    return any(change == pattern or fnmatchcase(change, pattern) for pattern in accept)


def with_schema_created(schema: str, changes: Changes) -> Changes:
    """``changes`` preceded by the ``CREATE SCHEMA`` of a new tenant."""
    return replace(
        changes,
        operations=(f"create schema {schema}", *changes.operations),
        classes=("safe", *changes.classes),
        sql=(f"CREATE SCHEMA {quote(schema)}", *changes.sql),
    )


def strict_failure(differences: Iterable[str]) -> str:
    """The error of a tenant that ``strict=True`` fails: what would still differ."""
    return "would still differ from the model (strict): " + "; ".join(differences)
