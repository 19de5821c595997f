"""The model of the online path's tests: a big ``events`` table that v2 constrains."""

from __future__ import annotations

import sqlalchemy as sa


def events_model(v2: bool) -> sa.MetaData:
    """v1: events without constraints; v2 adds an index, a FOREIGN KEY, a CHECK, a
    UNIQUE and a NOT NULL on it: each of them slow, or blocking, on a big table."""
    metadata = sa.MetaData()
    sa.Table(
        "accounts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
    )
    account = sa.ForeignKey("accounts.id", name="fk_events_account") if v2 else None
    extra = (
        [
            sa.CheckConstraint("amount >= 0", name="ck_events_amount"),
            sa.UniqueConstraint("id", "kind", name="uq_events_id_kind"),
        ]
        if v2
        else []
    )
    sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, *([account] if account else []), index=v2),
        sa.Column("kind", sa.Text),
        sa.Column("amount", sa.Integer),
        sa.Column("note", sa.Text, nullable=not v2),
        *extra,
    )
    return metadata


def index_only_model() -> sa.MetaData:
    """v1 with only the index on events.account_id added: nothing for phase 1 to lock."""
    metadata = events_model(False)
    sa.Index("ix_events_account_id", metadata.tables["events"].c.account_id)
    return metadata


def load_events(conn: sa.Connection, schema: str, rows: int) -> None:
    """10 accounts and ``rows`` events in ``schema``, every note filled; analyzed."""
    conn.exec_driver_sql(
        f"INSERT INTO \"{schema}\".accounts SELECT i, 'a' FROM generate_series(1, 10) i"
    )
    conn.exec_driver_sql(
        f"INSERT INTO \"{schema}\".events SELECT i, mod(i, 10) + 1, 'k', i, 'n'"
        f" FROM generate_series(1, {rows}) i"
    )
    conn.exec_driver_sql(f'ANALYZE "{schema}".events')


def online_leftovers(conn: sa.Connection, schema: str) -> list[str]:
    """What an unfinished online change leaves: invalid indexes, constraints not
    validated, helper CHECKs."""
    rows = conn.execute(
        sa.text(
            "SELECT 'invalid index ' || c.relname FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relnamespace = CAST(:s AS regnamespace) AND NOT i.indisvalid"
            " UNION ALL SELECT 'not validated ' || conname FROM pg_constraint"
            " WHERE connamespace = CAST(:s AS regnamespace) AND NOT convalidated"
            " UNION ALL SELECT 'helper ' || conname FROM pg_constraint"
            " WHERE connamespace = CAST(:s AS regnamespace)"
            " AND conname LIKE 'tenant\\_sync\\_not\\_null\\_%'"
        ),
        {"s": schema},
    )
    return sorted(row[0] for row in rows)
