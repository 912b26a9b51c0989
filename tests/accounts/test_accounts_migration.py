"""Migration 0008 adds ``account`` to authorizations, existing rows ``default``, and makes
(provider, account, order_id) the unique key, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from watchdog import schema
from watchdog.db import make_engine

INSERT = (
    "INSERT INTO authorizations (provider, {extra}order_id, amount, currency, authorized_at, "
    "state, captured_amount, capture_count, deadline, deadline_source, alert_stage, "
    "instruction_final, generation, attempts, created_at, updated_at) VALUES "
    "('flitt', {value}:order_id, 100, 'GEL', '2026-12-01 10:00:00', 'authorized', 0, 0, "
    "'2026-12-08 10:00:00', 'provider_window', 0, false, 0, 0, '2026-12-01 10:00:00', "
    "'2026-12-01 10:00:00')"
)


def _insert(conn: object, order_id: str, account: str | None = None) -> None:
    sql = INSERT.format(extra="account, " if account else "",
                        value=":account, " if account else "")
    conn.execute(text(sql), {"order_id": order_id, "account": account})  # type: ignore[attr-defined]


def test_existing_rows_become_the_default_account_and_order_ids_are_per_account(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        schema.upgrade(engine, "0007")
        with engine.begin() as conn:
            _insert(conn, "o-1")
        schema.upgrade(engine)
        schema.check(engine)
        with engine.begin() as conn:
            accounts = conn.execute(text("SELECT account FROM authorizations")).scalars().all()
            assert accounts == ["default"]
            _insert(conn, "o-1", "ge-shop")  # the same order id in another account: fine
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _insert(conn, "o-1", "ge-shop")  # twice in one account: refused
        with pytest.raises(RuntimeError, match="more than one account"):
            schema.downgrade(engine, "0007")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM authorizations WHERE account = 'ge-shop'"))
        schema.downgrade(engine, "0007")
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _insert(conn, "o-1")
        schema.upgrade(engine)
        assert schema.is_at_head(engine)
    finally:
        engine.dispose()
