"""Constraints added ``NOT VALID`` and never validated: found from the two states, validated.

A FOREIGN KEY or CHECK added ``NOT VALID`` (by the online path, see
:mod:`tenant_sync.online`, or by hand) is enforced for new rows only: the rows already
there were never checked.  PostgreSQL renders it with ``NOT VALID``, so a tenant's state
shows it (see :mod:`tenant_sync.yardstick`), and autogenerate does not.  Where the model
has the same constraint validated, the plan validates it: ``ALTER TABLE ... VALIDATE
CONSTRAINT`` scans the table under a lock that lets writes go on, and may fail on rows
that break it (``data_dependent``).
"""

from __future__ import annotations

from alembic.operations import Operations, ops

from .sql import quote

__all__ = ["NOT_VALID", "ValidateConstraintOp", "compare_validation", "only_not_valid"]

#: How ``pg_get_constraintdef()`` ends the definition of a constraint never validated.
NOT_VALID = " NOT VALID"


class ValidateConstraintOp(ops.MigrateOperation):
    """``ALTER TABLE ... VALIDATE CONSTRAINT``: check the existing rows of a constraint
    added ``NOT VALID``."""

    def __init__(self, constraint_name: str, table_name: str, schema: str | None = None):
        self.constraint_name = constraint_name
        self.table_name = table_name
        self.schema = schema

    def describe(self) -> str:
        """The operation in words: ``validate constraint fk_events_account on events``."""
        return f"validate constraint {self.constraint_name} on {self.table_name}"

    def statement(self, schema: str | None = None) -> str:
        """The statement; the table qualified with ``schema`` when given."""
        table = (
            quote(self.table_name)
            if schema is None
            else f"{quote(schema)}.{quote(self.table_name)}"
        )
        return f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(self.constraint_name)}"


@Operations.implementation_for(ValidateConstraintOp)
def _validate(operations: Operations, operation: ValidateConstraintOp) -> None:
    operations.execute(operation.statement(operation.schema))


def only_not_valid(tenant: str | None, model: str | None) -> bool:
    """True when a tenant's constraint is the model's, added ``NOT VALID`` and not validated."""
    return (
        tenant is not None
        and model is not None
        and not model.endswith(NOT_VALID)
        and tenant == model + NOT_VALID
    )


def compare_validation(
    tenant: dict[tuple[str, str | None, str], str], model: dict[tuple[str, str | None, str], str]
) -> list[ValidateConstraintOp]:
    """A validation for each constraint the tenant has ``NOT VALID`` and the model validated."""
    return [
        ValidateConstraintOp(name, table)
        for (kind, table, name), definition in sorted(tenant.items(), key=lambda item: str(item[0]))
        if kind == "constraint" and table is not None
        if only_not_valid(definition, model.get((kind, table, name)))
    ]
