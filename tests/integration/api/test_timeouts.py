"""Statement and lock timeouts on every engine; a request that hits one answers 503 with Retry-After."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.adapters import db
from app.entrypoints.http.problems import unavailable_dependency


def _show(engine, name: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text(f"SHOW {name}")).scalar_one()


def test_every_engine_sets_statement_and_lock_timeouts() -> None:
    # The defaults (app/config.py): API 10 s / 2 s, workers 30 s / 10 s.
    assert (_show(db.api_engine(), "statement_timeout"), _show(db.api_engine(), "lock_timeout")) == ("10s", "2s")
    assert (_show(db.worker_engine(), "statement_timeout"), _show(db.worker_engine(), "lock_timeout")) == ("30s", "10s")


def test_a_statement_past_its_timeout_is_a_dependency_problem(monkeypatch) -> None:
    monkeypatch.setenv("API_STATEMENT_TIMEOUT_MS", "200")
    db.api_engine.cache_clear()
    try:
        with pytest.raises(OperationalError) as caught, db.api_engine().connect() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert caught.value.orig.pgcode == "57014"
        assert unavailable_dependency(caught.value) == "the database"  # -> 503 with Retry-After
    finally:
        db.api_engine().dispose()
        db.api_engine.cache_clear()


def test_a_request_waiting_on_a_held_row_lock_answers_503_with_retry_after(client, user, admin_db, api_db,
                                                                           monkeypatch) -> None:
    created = client.post("/api/miners", json={"model_id": "antminer-s21"}, headers=user.headers())
    assert created.status_code == 201
    miner_id = created.json()["id"]
    monkeypatch.setenv("API_LOCK_TIMEOUT_MS", "300")
    db.api_engine().dispose()
    db.api_engine.cache_clear()
    holder = psycopg2.connect(api_db.admin_url)  # another transaction holds the miner's row
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM miners WHERE id = %s FOR UPDATE", (miner_id,))
        r = client.patch(f"/api/miners/{miner_id}/status", json={"status": "idle"}, headers=user.headers())
    finally:
        holder.rollback()
        holder.close()
        db.api_engine().dispose()
        db.api_engine.cache_clear()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "2" and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:hashinsight:problem:dependency-unavailable"
    # Nothing was half-written: the status is unchanged and a retry now succeeds.
    assert admin_db.one("SELECT status FROM miners WHERE id = %s", miner_id) == "active"
    again = client.patch(f"/api/miners/{miner_id}/status", json={"status": "idle"}, headers=user.headers())
    assert again.status_code == 200, again.text
