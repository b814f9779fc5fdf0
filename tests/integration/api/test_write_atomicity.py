"""Every write is business rows + one outbox row + one audit row in ONE transaction: a failure writes nothing."""

from __future__ import annotations

import uuid

import psycopg2.extensions
import pytest
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from app.adapters import db
from app.service_layer import unit_of_work

BODY = {"model_id": "antminer-s21", "label": "atomic"}


def _nothing_written(admin_db, user) -> None:
    for table, column, value in [
        ("miners", "tenant_id", user.tenant_id),
        ("user_miners", "tenant_id", user.tenant_id),
        ("audit_logs", "tenant_id", user.tenant_id),
        ("idempotency_keys", "tenant_id", user.tenant_id),
        ("trades", "tenant_id", user.tenant_id),
    ]:
        assert admin_db.one(f"SELECT count(*) FROM {table} WHERE {column} = %s", value) == 0, table


def test_outbox_insert_failure_rolls_back_the_business_rows(client, user, admin_db):
    """A real constraint violation on the outbox insert: a CHECK that refuses this one user's events."""
    assert client.get("/api/miners", headers=user.headers()).status_code == 200  # provisioned
    constraint = f"refuse_{user.user_id.replace('-', '_')}"
    admin_db.execute(f"ALTER TABLE event_outbox ADD CONSTRAINT {constraint} CHECK (user_id <> '{user.user_id}')"
                     " NOT VALID")
    try:
        r = client.post("/api/miners", json=BODY, headers=user.headers(idempotency_key=str(uuid.uuid4())))
    finally:
        admin_db.execute(f"ALTER TABLE event_outbox DROP CONSTRAINT {constraint}")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    _nothing_written(admin_db, user)
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 0


@pytest.mark.parametrize("path,body", [
    ("/api/miners", BODY),
    ("/api/miners/bulk", {"items": [BODY, BODY]}),
    ("/api/treasury/execute", {"side": "buy", "amount_btc": 0.5}),
])
def test_failure_after_the_business_rows_leaves_nothing(client, user, admin_db, monkeypatch, path, body):
    """The outbox and audit inserts run in commit(); make the audit insert fail after they were executed."""
    real_commit = unit_of_work.UnitOfWork.commit

    def failing_commit(self):
        # business rows are written by now; queue an audit row whose insert violates a CHECK constraint
        self._audit.append(unit_of_work.AuditEntry(action="x", actor_id="x", actor_type="martian"))
        real_commit(self)

    monkeypatch.setattr(unit_of_work.UnitOfWork, "commit", failing_commit)
    r = client.post(path, json=body, headers=user.headers(idempotency_key=str(uuid.uuid4())))
    assert r.status_code == 500
    _nothing_written(admin_db, user)
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 0


def test_status_change_failure_keeps_the_old_status(client, user, admin_db, monkeypatch):
    miner = client.post("/api/miners", json=BODY, headers=user.headers()).json()

    def failing_commit(self):
        raise RuntimeError("database went away between the update and the commit")

    monkeypatch.setattr(unit_of_work.UnitOfWork, "commit", failing_commit)
    r = client.patch(f"/api/miners/{miner['id']}/status", json={"status": "offline"}, headers=user.headers())
    assert r.status_code == 500
    assert admin_db.one("SELECT status FROM miners WHERE id = %s", miner["id"]) == "active"
    assert admin_db.one("SELECT count(*) FROM event_outbox WHERE user_id = %s", user.user_id) == 1  # miner.added


def test_the_chain_lock_is_free_and_the_write_committed_when_the_audit_round_trip_returns(admin_db):
    """The tenant's audit chain lock (migrations/0053) must not stay held while the client turns round to send
    COMMIT: at the moment the audit insert's answer is back, another writer can take the lock and the rows are
    already visible."""
    tenant = f"t-lock-{uuid.uuid4().hex[:8]}"
    engine = db.api_engine()
    seen: list[tuple[bool, int]] = []

    def after_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if "INSERT INTO audit_logs" in statement:
            free = admin_db.one("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                                f"hashinsight.audit_chain:{tenant}")
            rows = admin_db.one("SELECT count(*) FROM audit_logs WHERE tenant_id = %s", tenant)
            seen.append((free, rows))

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        with unit_of_work.UnitOfWork(engine, tenant) as uow:
            uow.audit(unit_of_work.AuditEntry(action="lock.check", actor_id="u1"))
            uow.commit()
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
    assert seen == [(True, 1)]
    assert admin_db.one("SELECT chain_seq FROM audit_logs WHERE tenant_id = %s", tenant) == 1


def _user_rows(admin_db, tenant: str) -> int:
    return admin_db.one("SELECT count(*) FROM users WHERE tenant_id = %s", tenant)


def _add_user(uow: unit_of_work.UnitOfWork) -> None:
    uow.conn.exec_driver_sql("INSERT INTO users (id, tenant_id) VALUES (%(u)s, %(t)s)",
                             {"u": f"u-{uuid.uuid4().hex[:8]}", "t": uow.tenant_id})


def _handed_back_clean(driver) -> None:
    """The unit of work runs its driver connection in autocommit mode and says BEGIN and COMMIT itself: the pool
    must get it back out of autocommit and with no transaction open, whatever happened inside."""
    assert driver.autocommit is False
    assert driver.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_committed_unit_of_work_is_durable_and_hands_its_connection_back_clean(admin_db):
    tenant = f"t-uow-{uuid.uuid4().hex[:8]}"
    with unit_of_work.UnitOfWork(db.api_engine(), tenant) as uow:
        driver = uow.conn.connection.dbapi_connection
        _add_user(uow)
        uow.audit(unit_of_work.AuditEntry(action="uow.check", actor_id="u1"))
        uow.commit()
    _handed_back_clean(driver)
    assert _user_rows(admin_db, tenant) == 1
    assert admin_db.one("SELECT count(*) FROM audit_logs WHERE tenant_id = %s", tenant) == 1


def test_a_commit_with_no_events_or_audit_rows_still_commits_the_business_rows(admin_db):
    tenant = f"t-uow-{uuid.uuid4().hex[:8]}"
    with unit_of_work.UnitOfWork(db.api_engine(), tenant) as uow:
        driver = uow.conn.connection.dbapi_connection
        _add_user(uow)
        uow.commit()
    _handed_back_clean(driver)
    assert _user_rows(admin_db, tenant) == 1


def test_leaving_without_commit_rolls_back_and_hands_the_connection_back_clean(admin_db):
    tenant = f"t-uow-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError), unit_of_work.UnitOfWork(db.api_engine(), tenant) as uow:
        driver = uow.conn.connection.dbapi_connection
        _add_user(uow)
        raise RuntimeError("the handler failed after its first row")
    _handed_back_clean(driver)
    assert _user_rows(admin_db, tenant) == 0
    with unit_of_work.UnitOfWork(db.api_engine(), tenant) as uow:  # a never-committed read: rolled back too
        driver = uow.conn.connection.dbapi_connection
        _add_user(uow)
    _handed_back_clean(driver)
    assert _user_rows(admin_db, tenant) == 0


def test_a_failed_statement_rolls_back_and_hands_the_connection_back_clean(admin_db):
    tenant = f"t-uow-{uuid.uuid4().hex[:8]}"
    with pytest.raises(sa_exc.IntegrityError), unit_of_work.UnitOfWork(db.api_engine(), tenant) as uow:
        driver = uow.conn.connection.dbapi_connection
        _add_user(uow)
        for _ in range(2):  # the second is a duplicate key: the server's transaction is failed from then on
            uow.conn.exec_driver_sql("INSERT INTO users (id, tenant_id) VALUES ('twice', %(t)s)", {"t": tenant})
    _handed_back_clean(driver)
    assert _user_rows(admin_db, tenant) == 0
