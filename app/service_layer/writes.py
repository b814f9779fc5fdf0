"""The one path every API write takes: unit of work + Idempotency-Key + event + audit, or nothing.

    outcome = run_write(caller, "create_miner", params, body, work)

1. open a UnitOfWork on the caller's tenant (SET LOCAL app.tenant_id: RLS scopes every statement);
2. claim the Idempotency-Key in that transaction (service_layer/idempotency.py); a replay returns the
   stored Outcome at once and writes nothing;
3. `work(uow)` writes the business rows through `uow.conn`, `uow.emit()`s exactly one outbox event and
   `uow.audit()`s one audit row, and returns the Outcome;
4. the Outcome is stored under the key and everything commits together. Any exception on the way rolls
   back all of it, the key claim included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.adapters.db import api_engine
from app.adapters.tokens import Principal
from app.service_layer import idempotency
from app.service_layer.errors import Conflict
from app.service_layer.idempotency import Outcome
from app.service_layer.unit_of_work import AuditEntry, OutboxEvent, UnitOfWork

TYPE_IDEMPOTENCY_REUSED = "urn:hashinsight:problem:idempotency-key-reused"


@dataclass(frozen=True)
class Caller:
    """Who writes, and the request facts the event and the audit row record."""

    principal: Principal
    request_id: str | None = None
    trace_id: str | None = None
    source_ip: str | None = None
    idempotency_key: str | None = None
    traceparent: str | None = None  # of the request's span: stored on the outbox row, continued by consumers

    def event(self, kind: str, payload: BaseModel, entity_id: str | None) -> OutboxEvent:
        return OutboxEvent(
            kind=kind,
            user_id=self.principal.user_id,
            payload=payload,
            entity_id=entity_id,
            idempotency_key=idempotency.outbox_key(self.principal, self.idempotency_key, kind),
            trace_id=self.trace_id,
            traceparent=self.traceparent,
        )

    def audit(self, action: str, entity_type: str, entity_id: str | None, details: dict[str, Any]) -> AuditEntry:
        if self.idempotency_key:
            details = {**details, "idempotency_key": self.idempotency_key}
        return AuditEntry(
            action=action,
            actor_id=self.principal.user_id,
            entity_type=entity_type,
            entity_id=entity_id,
            request_id=self.request_id,
            trace_id=self.trace_id,
            source_ip=self.source_ip,
            details=details,
        )


def run_write(
    caller: Caller,
    operation_id: str,
    params: dict[str, Any],
    body: Any,
    work: Callable[[UnitOfWork], Outcome],
) -> Outcome:
    fingerprint = idempotency.request_hash(operation_id, params, body)
    with UnitOfWork(api_engine(), caller.principal.tenant_id) as uow:
        try:
            claimed = idempotency.claim(uow.conn, caller.principal, caller.idempotency_key, fingerprint)
        except idempotency.IdempotencyConflict:
            raise Conflict(
                f"Idempotency-Key {caller.idempotency_key} was already used with a different request",
                problem_type=TYPE_IDEMPOTENCY_REUSED,
            ) from None
        except idempotency.IdempotencyInFlight:
            raise Conflict(
                f"A request with Idempotency-Key {caller.idempotency_key} is still being processed; retry later",
                problem_type=TYPE_IDEMPOTENCY_REUSED,
            ) from None
        if claimed.replay is not None:
            return claimed.replay
        outcome = work(uow)
        uow.tag_idempotency_keys(claimed.claimed_at)
        idempotency.finish(uow.conn, caller.principal, claimed, outcome)
        uow.commit()
    return outcome
