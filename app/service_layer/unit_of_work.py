"""The unit of work: one transaction, one tenant, everything or nothing.

Business rows written through `conn`, the outbox events given to `emit` and the audit rows given to `audit`
commit together in `commit()`; leaving the block without committing rolls everything back. The tenant is set
with set_config(..., is_local => true), i.e. SET LOCAL, so Row-Level Security scopes every statement and the
setting cannot leak to the next user of the pooled connection.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import psycopg2.extensions
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from app.adapters.prepared import Prepared
from generated.events import EVENT_MODELS


@dataclass(frozen=True)
class OutboxEvent:
    kind: str
    user_id: str
    payload: BaseModel
    entity_id: str | None = None
    idempotency_key: str | None = None
    trace_id: str | None = None
    # W3C traceparent of the span that wrote the event; the connector carries it to a Kafka record header.
    traceparent: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class AuditEntry:
    action: str
    actor_id: str
    actor_type: str = "user"
    entity_type: str | None = None
    entity_id: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    source_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class UnknownEventKind(ValueError):
    pass


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


ROWS_PER_ROUND_TRIP = 100
# In the driver's own parameter style: a commit's round trip goes to the driver as it is, without being compiled
# (binding a commit's twenty-odd parameters through the SQL layer cost the API about 0.2 ms a write).
_OUTBOX_INSERT = """INSERT INTO event_outbox
      (id, kind, user_id, entity_id, payload, idempotency_key, tenant_id, trace_id, traceparent)
    VALUES (%(id_{n})s, %(kind_{n})s, %(user_id_{n})s, %(entity_id_{n})s, CAST(%(payload_{n})s AS jsonb),
            %(idem_{n})s, %(tenant_id)s, %(trace_id_{n})s, %(traceparent_{n})s)"""
_AUDIT_INSERT = """INSERT INTO audit_logs
      (tenant_id, actor_type, actor_id, action, entity_type, entity_id, request_id, trace_id, source_ip, details)
    VALUES (%(tenant_id)s, %(actor_type_{n})s, %(actor_id_{n})s, %(action_{n})s, %(entity_type_{n})s,
            %(audit_entity_id_{n})s, %(request_id_{n})s, %(audit_trace_id_{n})s, %(source_ip_{n})s,
            CAST(%(details_{n})s AS jsonb))"""


# A batch that spans tenants switches many times: planned once per connection.
_SET_TENANT = Prepared("set_tenant", "SELECT set_config('app.tenant_id', CAST(:t AS text), true)")


class UnitOfWork:
    def __init__(self, engine: Engine, tenant_id: str) -> None:
        if not tenant_id:
            raise ValueError("a unit of work needs a tenant")
        self._engine = engine
        self.tenant_id = tenant_id
        self._events: list[OutboxEvent] = []
        self._audit: list[AuditEntry] = []
        self.conn: Connection

    def __enter__(self) -> UnitOfWork:
        # The unit of work says BEGIN and COMMIT itself, each riding with other statements: BEGIN with the tenant
        # setting, COMMIT with the outbox and audit rows. Left to the driver they are round trips of their own
        # (two of a write's five), and on a busy API process every round trip is a thread waiting for its turn
        # at the interpreter. The driver is in autocommit mode only while this block holds the connection.
        self.conn = self._engine.connect()
        self._driver = self.conn.connection.dbapi_connection
        try:
            self._driver.autocommit = True
            self._tx = self.conn.begin()  # the pool's bookkeeping; savepoints (begin_nested) hang from it
            self.conn.exec_driver_sql("BEGIN; SELECT set_config('app.tenant_id', %(t)s, true)", {"t": self.tenant_id})
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def _release(self) -> None:
        """Roll back whatever is still open, and hand the connection back as the pool lent it."""
        try:
            if self._driver.closed:
                self.conn.invalidate()
            elif self._driver.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                self.conn.exec_driver_sql("ROLLBACK")
        except Exception:  # noqa: BLE001 - a connection we cannot vouch for is not given to the next caller
            self.conn.invalidate()
        finally:
            try:
                if not self._driver.closed:
                    self._driver.autocommit = False
            except Exception:  # noqa: BLE001
                self.conn.invalidate()
            self.conn.close()

    def set_tenant(self, tenant_id: str) -> None:
        """Scope the statements that follow to another tenant, inside the same transaction.

        For work that spans tenants in one commit (a consumer's batch, a market-data fan-out): RLS reads the
        setting per statement. Business writes with events and audit rows keep to one tenant per unit of work.
        """
        if not tenant_id:
            raise ValueError("a unit of work needs a tenant")
        if self._events or self._audit:
            raise RuntimeError("events or audit rows are pending for the current tenant; commit them first")
        _SET_TENANT(self.conn, {"t": tenant_id})
        self.tenant_id = tenant_id

    def emit(self, event: OutboxEvent) -> OutboxEvent:
        model = EVENT_MODELS.get(event.kind)
        if model is None:
            raise UnknownEventKind(f"no contract for event kind {event.kind!r}")
        if not isinstance(event.payload, model):
            got = type(event.payload).__name__
            raise TypeError(f"{event.kind} payload must be {model.__name__}, got {got}")
        self._events.append(event)
        return event

    def tag_idempotency_keys(self, tag: str | None) -> None:
        """Append `:<tag>` to the outbox idempotency key of every pending event (run_write passes the key claim's
        timestamp, so the outbox's uniqueness lasts exactly as long as the claim; see service_layer/idempotency.py)."""
        if tag:
            self._events = [replace(e, idempotency_key=f"{e.idempotency_key}:{tag}") if e.idempotency_key else e
                            for e in self._events]

    def audit(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    def commit(self) -> None:
        # The pending rows in one round trip (a batch per ROWS_PER_ROUND_TRIP); the audit rows last, because
        # their trigger takes the tenant's chain lock (migrations/0053), held until COMMIT. COMMIT rides in the
        # last batch: otherwise the lock stays held while the answer travels back and this thread waits its turn
        # for the interpreter to send COMMIT, tens of milliseconds on a busy process, and every other write of
        # the tenant queues behind it.
        statements: list[tuple[str, dict[str, Any]]] = []
        for n, ev in enumerate(self._events):
            statements.append((_OUTBOX_INSERT.format(n=n), {
                f"id_{n}": ev.id, f"kind_{n}": ev.kind, f"user_id_{n}": ev.user_id, f"entity_id_{n}": ev.entity_id,
                f"payload_{n}": ev.payload.model_dump_json(), f"idem_{n}": ev.idempotency_key,
                f"trace_id_{n}": ev.trace_id, f"traceparent_{n}": ev.traceparent,
            }))
        for n, entry in enumerate(self._audit):
            statements.append((_AUDIT_INSERT.format(n=n), {
                f"actor_type_{n}": entry.actor_type, f"actor_id_{n}": entry.actor_id, f"action_{n}": entry.action,
                f"entity_type_{n}": entry.entity_type, f"audit_entity_id_{n}": entry.entity_id,
                f"request_id_{n}": entry.request_id, f"audit_trace_id_{n}": entry.trace_id,
                f"source_ip_{n}": entry.source_ip, f"details_{n}": _json(entry.details),
            }))
        for i in range(0, len(statements), ROWS_PER_ROUND_TRIP):
            batch = statements[i:i + ROWS_PER_ROUND_TRIP]
            params: dict[str, Any] = {"tenant_id": self.tenant_id}
            for _, values in batch:
                params.update(values)
            sql = [sql for sql, _ in batch]
            if i + ROWS_PER_ROUND_TRIP >= len(statements):
                sql.append("COMMIT")
            self.conn.exec_driver_sql(";\n".join(sql), params)
        if not statements:
            self.conn.exec_driver_sql("COMMIT")
        self._tx.commit()  # the pool's bookkeeping; the driver, in autocommit mode, sends nothing
        self._events.clear()
        self._audit.clear()
