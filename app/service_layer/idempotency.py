"""Idempotency-Key for writes: a repeated key returns the first result and writes nothing new.

Mechanism: the `idempotency_keys` row is claimed INSIDE the write's own transaction (the unit of work),
before any business row:

    INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash) VALUES (...)
    ON CONFLICT (tenant_id, user_id, key) DO NOTHING RETURNING 1

- Inserted: this request owns the key. It does its work, stores its response in the same row
  (`finish`), and everything commits together. If anything fails, the claim rolls back with the rest,
  so a retry with the same key runs again (a failed write is not cached).
- Not inserted because the row is committed: a replay. The stored request hash must match (same
  operation, same path parameters, same body) or the answer is 409; otherwise the stored status, body and
  Location are returned with `Idempotent-Replayed: true`.
- Racing duplicates: while the first transaction is open, PostgreSQL makes the second INSERT wait on the
  unique index for the first transaction's outcome. First commits -> the second's INSERT does nothing and
  it replays the committed response; first rolls back -> the second inserts and does the work itself.
  Exactly one business write, one event, one audit row, without advisory locks or polling.

Window: a key is remembered for IDEMPOTENCY_RETENTION_HOURS (default 24). Within it a repeat replays; past it
the key is a new request, the same whether or not the purge has deleted the old row yet (`claim` takes a stale
row over). The outbox key carries the claim's timestamp, so it is unique per claim, not per key for ever.

Scope: the key belongs to (tenant, user); the operation is part of the request hash, so reusing a key on
another operation is a 409 ("keys are global", contracts/openapi.yaml). Outbox rows get the globally unique
`<tenant>:<user>:<key>:<kind>` (docs/database.md), a second guard against a duplicate event.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from app.adapters.tokens import Principal
from app.config import get_settings

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Outcome:
    """What a write answers: status, JSON body and headers (e.g. Location). `replayed` marks a replay."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.replayed:
            headers[REPLAYED_HEADER] = "true"
        return headers


class IdempotencyConflict(Exception):
    """The key was used before with a different request (-> 409)."""


class IdempotencyInFlight(Exception):
    """The key's row exists without a response (cannot happen with the transactional claim; defensive)."""


def request_hash(operation_id: str, params: dict[str, Any], body: Any) -> str:
    """Fingerprint of the request: operation + path parameters + canonical JSON body."""
    canonical = json.dumps(
        {"op": operation_id, "params": params, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def outbox_key(principal: Principal, key: str | None, kind: str) -> str | None:
    """event_outbox.idempotency_key: globally unique, so namespaced by tenant, user and event kind. run_write
    appends the claim's timestamp (UnitOfWork.tag_idempotency_keys): a key reused after its retention is a new
    claim whose event gets a new outbox key, so the outbox's UNIQUE constraint never outlives the key it guards."""
    if not key:
        return None
    return f"{principal.tenant_id}:{principal.user_id}:{key}:{kind}"


@dataclass
class Claim:
    key: str | None
    request_hash: str
    replay: Outcome | None = None
    claimed_at: str | None = None  # the claim's created_at (epoch microseconds), part of the outbox key


def claim(conn: Connection, principal: Principal, key: str | None, fingerprint: str,
          retention_hours: int | None = None) -> Claim:
    """Claim `key` in the current transaction, or find the response to replay (see the module docstring).

    A key older than its retention counts as absent whether or not the purge has deleted it yet: the stale row
    is taken over (new hash, no response, new created_at) in the same statement, so an old key is a new request,
    never a replay of a response the client no longer expects and never a conflict."""
    if not key:
        return Claim(None, fingerprint)
    hours = get_settings().idempotency_retention_hours if retention_hours is None else retention_hours
    params = {"t": principal.tenant_id, "u": principal.user_id, "k": key, "h": fingerprint, "hours": hours}
    for _ in range(2):  # a second pass only when an expiry sweep deleted the row between the two statements
        claimed_at = conn.execute(
            text(
                """INSERT INTO idempotency_keys AS k (tenant_id, user_id, key, request_hash)
                   VALUES (:t, :u, :k, :h)
                   ON CONFLICT (tenant_id, user_id, key) DO UPDATE
                      SET request_hash = EXCLUDED.request_hash, status_code = NULL, response = NULL,
                          created_at = now()
                    WHERE k.created_at < now() - make_interval(hours => :hours)
                   RETURNING (extract(epoch FROM k.created_at) * 1000000)::bigint"""
            ),
            params,
        ).scalar()
        if claimed_at is not None:
            return Claim(key, fingerprint, claimed_at=str(claimed_at))
        row = conn.execute(
            text(
                """SELECT request_hash, status_code, response FROM idempotency_keys
                    WHERE tenant_id = :t AND user_id = :u AND key = :k"""
            ),
            params,
        ).first()
        if row is not None:
            break
    else:
        raise IdempotencyInFlight(key)
    stored_hash, status_code, response = row
    if stored_hash != fingerprint:
        raise IdempotencyConflict(key)
    if status_code is None:
        raise IdempotencyInFlight(key)
    response = response or {}
    return Claim(
        key,
        fingerprint,
        replay=Outcome(status_code, response.get("body"), dict(response.get("headers") or {}), replayed=True),
    )


def finish(conn: Connection, principal: Principal, claimed: Claim, outcome: Outcome) -> None:
    """Store the response under the claimed key (same transaction as the write)."""
    if not claimed.key:
        return
    conn.execute(
        text(
            """UPDATE idempotency_keys SET status_code = :s, response = CAST(:r AS jsonb)
                WHERE tenant_id = :t AND user_id = :u AND key = :k"""
        ),
        {
            "s": outcome.status,
            "r": json.dumps({"body": outcome.body, "headers": outcome.headers}, default=str),
            "t": principal.tenant_id,
            "u": principal.user_id,
            "k": claimed.key,
        },
    )
