"""Change classes, ``allow=``, ``accept=`` and ``strict=``, shown on PostgreSQL itself.

A ``safe`` type change keeps the table's file (``relfilenode``), a ``rewrite`` one
replaces it; what a class withholds stays as it was, and is listed as a difference.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from cli_model import ledger_v2
from helpers import columns, relfilenode
from models import ledger_model
from sqlalchemy.engine import URL, Engine
from test_cli import run_cli, text_url

from tenant_sync import ConfigurationError, TenantSync


@pytest.fixture
def ledger(database_url: URL, engine: Engine) -> str:
    """A tenant at version 1 of the model, with one row."""
    with TenantSync(database_url, ledger_model(1)) as ts:
        assert ts.sync_tenant("books").status == "migrated"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO books.entries (amount, memo) VALUES (5, 'm')"))
    return "books"


def test_each_operation_has_its_class_and_only_safe_and_data_dependent_apply_by_default(
    database_url: URL, engine: Engine, ledger: str
) -> None:
    with TenantSync(database_url, ledger_model(2)) as ts:
        planned = ts.sync_all(dry_run=True).results[0]
        (result,) = ts.sync_all().results

    assert dict(zip(planned.operations, planned.classes, strict=True)) == {
        "add column entries.note TEXT": "safe",
        "add column entries.booked BOOLEAN NOT NULL": "data_dependent",
        "change type of entries.memo from VARCHAR(40) to VARCHAR(80)": "safe",
    }
    assert dict(zip(planned.withheld, planned.withheld_classes, strict=True)) == {
        "change type of entries.amount from INTEGER to BIGINT": "rewrite",
        "drop column entries.legacy": "destructive",
    }
    # The NOT NULL column without a default fails on the row: nothing of the tenant changed.
    assert result.status == "failed"
    assert "booked" in (result.error or "")
    assert columns(engine, ledger, "entries")["memo"] == "character varying(40)"


def test_a_rewrite_applies_when_allowed_and_replaces_the_table_file_a_safe_change_does_not(
    database_url: URL, engine: Engine, ledger: str
) -> None:
    model = ledger_model(2)
    model.tables["entries"].c.booked.server_default = sa.DefaultClause(sa.false())
    before = relfilenode(engine, ledger, "entries")

    with TenantSync(database_url, model) as ts:
        (safe,) = ts.sync_all().results
    after_safe = relfilenode(engine, ledger, "entries")
    with TenantSync(database_url, model, allow={"safe", "data_dependent", "rewrite"}) as ts:
        (rewrite,) = ts.sync_all().results

    assert safe.status == "migrated", safe.error
    assert safe.differences == [
        "change type of entries.amount from INTEGER to BIGINT (withheld: rewrite)",
        "drop column entries.legacy (withheld: destructive)",
    ]
    assert after_safe == before, "safe changes rewrote nothing"
    assert rewrite.operations == ["change type of entries.amount from INTEGER to BIGINT"]
    assert rewrite.classes == ["rewrite"]
    assert rewrite.differences == ["drop column entries.legacy (withheld: destructive)"]
    assert relfilenode(engine, ledger, "entries") != after_safe, "the rewrite made a new file"
    assert columns(engine, ledger, "entries")["amount"] == "bigint"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT amount, memo FROM books.entries")).one() == (5, "m")


def test_allow_can_be_a_callable_that_sees_each_change_in_words(
    database_url: URL, engine: Engine, ledger: str
) -> None:
    seen: list[tuple[str, str]] = []

    def only_the_legacy_drop(change: str, change_class: str) -> bool:
        seen.append((change, change_class))
        return change == "drop column entries.legacy" or change_class == "safe"

    with TenantSync(database_url, ledger_model(1), allow=only_the_legacy_drop) as ts:
        ts.sync_all()  # nothing to do: the callable is not asked
    model = ledger_model(2)
    model.tables["entries"].c.booked.nullable = True
    with TenantSync(database_url, model, allow=only_the_legacy_drop) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "migrated", result.error
    assert "drop column entries.legacy" in result.operations
    assert ("drop column entries.legacy", "destructive") in seen
    assert "legacy" not in columns(engine, ledger, "entries")
    assert result.withheld == ["change type of entries.amount from INTEGER to BIGINT"]


def test_an_accepted_change_stays_withheld_is_listed_and_no_longer_warns(
    database_url: URL, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tenant_sync")
    model = ledger_model(1)
    model.tables["entries"].c.amount.type = sa.BigInteger()
    model.tables["entries"].c.memo.type = sa.String(10)

    with TenantSync(
        database_url, model, accept=["change type of entries.memo *", "drop table nowhere"]
    ) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "unchanged"
    assert result.accepted == ["change type of entries.memo from VARCHAR(40) to VARCHAR(10)"]
    assert result.differences == [
        "change type of entries.amount from INTEGER to BIGINT (withheld: rewrite)"
    ]
    assert not result.in_sync
    assert "entries.memo" not in caplog.text
    assert "still differs from the model: change type of entries.amount" in caplog.text


@pytest.mark.parametrize("verify", [False, True])
def test_strict_fails_a_tenant_that_would_still_differ_and_leaves_it_untouched(
    database_url: URL, engine: Engine, ledger: str, verify: bool
) -> None:
    model = ledger_model(1)
    model.tables["entries"].c.amount.type = sa.BigInteger()
    model.tables["entries"].append_column(sa.Column("extra", sa.Text))

    with TenantSync(database_url, model, strict=True, verify=verify) as ts:
        (result,) = ts.sync_all().results

    assert result.status == "failed"
    assert result.error == (
        "would still differ from the model (strict): change type of entries.amount from "
        "INTEGER to BIGINT (withheld: rewrite)"
    )
    assert "extra" not in columns(engine, ledger, "entries"), "nothing applied"


def test_an_unknown_class_is_a_one_line_configuration_error(database_url: URL) -> None:
    with pytest.raises(ConfigurationError) as raised:
        TenantSync(database_url, ledger_model(1), allow={"safe", "risky"})
    assert str(raised.value) == (
        "unknown change class 'risky'; choose from safe, data_dependent, rewrite, destructive"
    )


def test_plan_prints_each_change_set_with_its_classes_and_exit_codes_tell_what_is_pending(
    database_url: URL, engine: Engine
) -> None:
    with TenantSync(database_url, ledger_model(1)) as ts:
        for name in ("alpha", "beta", "gamma", "delta"):
            ts.sync_tenant(name)
    url = text_url(database_url)
    model = "cli_model:ledger_v2"

    plan = run_cli("plan", "--url", url, "--model", model, "--sql", "--exit-code")
    drift = run_cli("drift", "--url", url, "--model", model, "--exit-code", "--allow", "safe")
    pending = run_cli("plan", "--url", url, "--model", model, "--exit-code", "--allow-destructive")
    bad = run_cli("plan", "--url", url, "--model", model, "--allow", "safe,risky")

    assert plan.returncode == 4, "changes pending, and some would still differ after them"
    assert pending.returncode == 3, "changes pending, none would remain"
    head = plan.stdout.split("\n\n")[0].splitlines()
    assert head == [
        "Change set 1: 4 tenants (alpha, beta, delta, ...)",
        "  [safe]            add column entries.note TEXT",
        "  [safe]            add column entries.booked BOOLEAN NOT NULL DEFAULT false",
        "  [safe]            change type of entries.memo from VARCHAR(40) to VARCHAR(80)",
        "  still differs:    change type of entries.amount from INTEGER to BIGINT"
        " (withheld: rewrite)",
        "  still differs:    drop column entries.legacy (withheld: destructive)",
        "  SQL:",
        "    ALTER TABLE entries ADD COLUMN note TEXT;",
        "    ALTER TABLE entries ADD COLUMN booked BOOLEAN DEFAULT false NOT NULL;",
        "    ALTER TABLE entries ALTER COLUMN memo TYPE VARCHAR(80);",
    ]
    assert plan.stdout.index("Change set 1") < plan.stdout.index("Dry run of 4 tenants")
    assert drift.returncode == 4, drift.stderr
    assert "still differs:" in drift.stdout
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "tenant-sync: error: unknown change class 'risky'; choose from safe, "
        "data_dependent, rewrite, destructive"
    )
    with TenantSync(database_url, ledger_v2, allow_destructive=True) as ts:
        assert ts.sync_all().ok
    done = run_cli("plan", "--url", url, "--model", model, "--exit-code")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Change set" not in done.stdout
