"""The memo: a round trip records the tenant's stamp and fingerprint, and the next catalog
pass trusts it only while the tenant's stamp is the memo's."""

from __future__ import annotations

import sqlalchemy as sa
from helpers import build_with_create_all, make_schemas, schema_definition, shapes_of
from models import model_v1
from sqlalchemy.engine import URL, Engine
from test_fast_path import LATE_CHANGES, _recheck_passes, build_drifted_tenants

from tenant_sync import TenantSync
from tenant_sync.fastpath.memo import MEMO_PREFIX

# Changes the fingerprint renders that touch no row the old stamp read: a sequence's
# name shows in its column's default.
MEMO_CHANGES = {
    **LATE_CHANGES,
    "renamed sequence": "ALTER SEQUENCE {t}.projects_id_seq RENAME TO late_seq",
}


def memos(engine: Engine, names: list[str]) -> dict[str, tuple[str, str]]:
    """Each tenant's memo, as (stamp, fingerprint), read from its version table's comment."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname, obj_description(c.oid, 'pg_class') FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relname = 'tenant_sync_version' AND n.nspname = ANY(:names)"
            ),
            {"names": names},
        ).all()
    found = {}
    for name, comment in rows:
        assert comment.startswith(MEMO_PREFIX + " "), comment
        stamp, fingerprint = comment.removeprefix(MEMO_PREFIX + " ").split(" ")
        found[name] = (stamp, fingerprint)
    return found


def test_a_round_trip_leaves_a_memo_the_next_pass_takes_while_the_tenant_is_untouched(
    database_url: URL, engine: Engine
) -> None:
    names = ["a", "b", "c"]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1(), workers=2) as ts:
        assert ts.sync_all().counts["migrated"] == 3
    recorded = memos(engine, names)
    shapes = shapes_of(engine, names)
    assert sorted(recorded) == names
    # The memo's stamp is the one the pass computes now, and the pass took its fingerprint.
    assert {name: (s.stamp, s.fingerprint) for name, s in shapes.items()} == recorded
    assert len({fingerprint for _, fingerprint in recorded.values()}) == 1, "one shape"
    with TenantSync(database_url, model_v1(), workers=2) as ts:
        again = ts.sync_all()
    assert again.counts["unchanged"] == 3 and all(r.in_sync for r in again.results)
    assert memos(engine, names) == recorded, "a run that changes nothing writes no memo"


def test_every_change_made_after_the_memo_is_seen_and_synced(
    database_url: URL, engine: Engine
) -> None:
    names = [f"late_{i:02d}" for i in range(len(MEMO_CHANGES))] + ["untouched"]
    make_schemas(engine, names)
    with TenantSync(database_url, model_v1(), workers=4) as ts:
        assert ts.sync_all().ok
    recorded = memos(engine, names)
    with engine.begin() as conn:
        for name, change in zip(names, MEMO_CHANGES.values(), strict=False):
            conn.execute(sa.text(change.format(t=name)))
    shapes = shapes_of(engine, names)
    for name, kind in zip(names, MEMO_CHANGES, strict=False):
        assert shapes[name].stamp != recorded[name][0], kind
        assert shapes[name].fingerprint != recorded[name][1], kind
    assert shapes["untouched"].fingerprint == recorded["untouched"][1]

    with TenantSync(database_url, model_v1(), workers=4) as ts:
        report = ts.sync_all()
    build_with_create_all(engine, model_v1(), "yardstick")
    expected = schema_definition(engine, "yardstick")
    for name, kind in zip(names, MEMO_CHANGES, strict=False):
        if kind == "renamed index":
            continue  # an index that differs only by its name is no difference, by design
        result = report.get(name)
        assert result is not None and result.status != "failed", (kind, result)
        # Equal to the model now, or the result says what still differs: never
        # "unchanged" on the memo's word.
        equal = schema_definition(engine, name) == expected
        assert equal or result.differences, kind
        assert result.status != "unchanged" or result.differences, kind


def test_tenants_without_a_memo_or_with_a_stale_one_have_the_stamp_the_recheck_computes(
    database_url: URL, engine: Engine
) -> None:
    names = build_drifted_tenants(database_url, engine, seed=5)  # stale memos, drifted
    with engine.begin() as conn:
        for name in names[: len(names) // 2]:
            conn.execute(sa.text(f'COMMENT ON TABLE "{name}".tenant_sync_version IS NULL'))
    shapes = shapes_of(engine, names)
    assert len({shape.fingerprint for shape in shapes.values()}) > 3
    assert [name for name in names if not _recheck_passes(engine, name, shapes[name])] == []


def test_tenants_built_by_different_copies_of_the_model_share_one_memo_fingerprint(
    database_url: URL, engine: Engine
) -> None:
    # Each tenant is built by a run of its own with a model of its own, as tenants made
    # by different processes are: the SQL, hence the memo's fingerprint, is the same.
    names = ["a", "b", "c", "d"]
    make_schemas(engine, names)
    for name in names:
        with TenantSync(database_url, model_v1(), tenants=[name]) as ts:
            assert ts.sync_all().counts["migrated"] == 1
    recorded = memos(engine, names)
    assert len({fingerprint for _, fingerprint in recorded.values()}) == 1, recorded
    assert len({shape.fingerprint for shape in shapes_of(engine, names).values()}) == 1
