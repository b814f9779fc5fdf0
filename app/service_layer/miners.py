"""Miners: add one, change status, bulk import (writes, through run_write) and the caller's reads.

Ownership: a miner belongs to one user through user_miners; every read joins it on the caller, so another
user's miner is "not found" (404), and Row-Level Security hides another tenant's rows altogether.

Effective values: miners.hashrate_ths / power_w are overrides (NULL = the model's); the API and the events
carry the effective value, COALESCE(override, model).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from app.adapters.db import api_engine
from app.adapters.prepared import Prepared
from app.adapters.tokens import Principal
from app.domain import miner_status
from app.service_layer import secrets
from app.service_layer.errors import Conflict, NotFound, TooManyItems, Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.writes import Caller, run_write
from generated.events import MinerAdded, MinerBulkImported, MinerStatusChanged, MinerUpdated

MAX_BULK_ITEMS = 10_000  # contracts/openapi.yaml: BulkImportRequest.items maxItems
MAX_FIELD_ERRORS = 1000  # Problem.errors maxItems
TYPE_INVALID_TRANSITION = "urn:hashinsight:problem:invalid-status-transition"
TYPE_DUPLICATE_SERIAL = "urn:hashinsight:problem:duplicate-serial-number"
MODELS_CACHE_SECONDS = 300.0  # miner_models is reference data that changes with a seed/migration only

_MINER_COLUMNS = """
    m.id, m.tenant_id, m.model_id, m.label, m.serial_number, m.status,
    COALESCE(m.hashrate_ths, mm.hashrate_ths) AS hashrate_ths,
    COALESCE(m.power_w, mm.power_w) AS power_w,
    m.electricity_price_usd_kwh, m.pool_fee_pct, m.hosting_site, m.purchase_price_usd,
    m.created_at, m.updated_at
"""

# Driven from user_miners (the caller's rows, by its primary key prefix), then miners by primary key: the
# plan stays an index walk plus PK lookups however many miners the tenant has.
_OWNED_MINERS = f"""
    SELECT {_MINER_COLUMNS}
      FROM user_miners um
      JOIN miners m ON m.id = um.miner_id AND m.tenant_id = um.tenant_id
      JOIN miner_models mm ON mm.id = m.model_id
     WHERE um.user_id = :user_id
"""


# --- serialization -----------------------------------------------------------------------------------------


def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with a Z, whatever the session time zone was."""
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, (Decimal, int, float)) else float(value)


def miner_json(row: Any) -> dict[str, Any]:
    """A miners row (with effective values) as the contract's Miner."""
    m = row._mapping
    return {
        "id": str(m["id"]),
        "tenant_id": m["tenant_id"],
        "model_id": m["model_id"],
        "label": m["label"],
        "serial_number": m["serial_number"],
        "status": m["status"],
        "hashrate_ths": float(m["hashrate_ths"]),
        "power_w": int(round(m["power_w"])),
        "electricity_price_usd_kwh": _num(m["electricity_price_usd_kwh"]),
        "pool_fee_pct": float(m["pool_fee_pct"]),
        "hosting_site": m["hosting_site"],
        "purchase_price_usd": _num(m["purchase_price_usd"]),
        "created_at": iso(m["created_at"]),
        "updated_at": iso(m["updated_at"]),
    }


# --- pools (the password is sealed; only password_set and a hint are ever shown) ---------------------------

_POOLS = text(
    """SELECT miner_id::text AS miner_id, url, worker, ciphertext IS NOT NULL AS password_set, password_hint
         FROM miner_pools WHERE miner_id = ANY(CAST(:ids AS uuid[]))"""
)


def with_pools(conn: Connection, miners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each miner's `pool` (or None) from miner_pools, in one query."""
    if not miners:
        return miners
    pools = {r.miner_id: r for r in conn.execute(_POOLS, {"ids": [m["id"] for m in miners]})}
    for m in miners:
        p = pools.get(m["id"])
        m["pool"] = None if p is None else {
            "url": p.url, "worker": p.worker, "password_set": bool(p.password_set),
            "password_hint": p.password_hint if p.password_set else None,
        }
    return miners


def _store_pool(conn: Connection, tenant_id: str, miner_id: str, pool: dict[str, Any] | None) -> bool:
    """Write (or, for None, remove) a miner's pool; a pool without `password` keeps the stored password.
    Returns whether a sealed password is stored afterwards."""
    if pool is None:
        conn.execute(text("DELETE FROM miner_pools WHERE miner_id = :m"), {"m": miner_id})
        return False
    password = pool.get("password")
    if password is None:
        row = conn.execute(
            text("""INSERT INTO miner_pools (tenant_id, miner_id, url, worker) VALUES (:t, :m, :url, :worker)
                    ON CONFLICT (tenant_id, miner_id) DO UPDATE
                      SET url = EXCLUDED.url, worker = EXCLUDED.worker, updated_at = now()
                    RETURNING ciphertext IS NOT NULL"""),
            {"t": tenant_id, "m": miner_id, "url": pool["url"], "worker": pool["worker"]},
        ).scalar_one()
        return bool(row)
    sealed = secrets.seal_pool_password(tenant_id, miner_id, password)
    conn.execute(
        text("""INSERT INTO miner_pools (tenant_id, miner_id, url, worker, master_key_id, wrapped_key, nonce,
                                         ciphertext, password_hint)
                VALUES (:t, :m, :url, :worker, :master_key_id, :wrapped_key, :nonce, :ciphertext, :hint)
                ON CONFLICT (tenant_id, miner_id) DO UPDATE
                  SET url = EXCLUDED.url, worker = EXCLUDED.worker, master_key_id = EXCLUDED.master_key_id,
                      wrapped_key = EXCLUDED.wrapped_key, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                      password_hint = EXCLUDED.password_hint, updated_at = now()"""),
        {"t": tenant_id, "m": miner_id, "url": pool["url"], "worker": pool["worker"],
         "hint": secrets.password_hint(password)} | sealed.params(),
    )
    return True


def _fingerprinted(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the Idempotency-Key's request hash sees it: the pool password as a keyed fingerprint."""
    pool = body.get("pool")
    if not pool or pool.get("password") is None:
        return body
    return {**body, "pool": {**pool, "password": secrets.fingerprint(pool["password"])}}


def _pool_audit(pool: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit row records of a pool: never the password, only whether one was given."""
    if pool is None:
        return None
    return {"url": pool["url"], "worker": pool["worker"], "password_given": pool.get("password") is not None}


# --- reads -------------------------------------------------------------------------------------------------


def _read(tenant_id: str) -> UnitOfWork:
    # A unit of work that is never committed: the tenant is SET LOCAL, and the exit rolls back.
    return UnitOfWork(api_engine(), tenant_id)


def get_miner(principal: Principal, miner_id: str) -> dict[str, Any]:
    with _read(principal.tenant_id) as uow:
        row = uow.conn.execute(
            text(_OWNED_MINERS + " AND m.id = :miner_id"), {"user_id": principal.user_id, "miner_id": miner_id}
        ).first()
        if row is None:
            raise NotFound(f"Miner {miner_id} not found")
        return with_pools(uow.conn, [miner_json(row)])[0]


def list_miners(
    principal: Principal, *, status: str | None, model_id: str | None, limit: int, offset: int
) -> dict[str, Any]:
    filters = " AND (CAST(:status AS text) IS NULL OR m.status = :status)" \
              " AND (CAST(:model_id AS text) IS NULL OR m.model_id = :model_id)"
    params = {"user_id": principal.user_id, "status": status, "model_id": model_id, "limit": limit, "offset": offset}
    with _read(principal.tenant_id) as uow:
        rows = uow.conn.execute(
            text(_OWNED_MINERS + filters + " ORDER BY m.created_at DESC, m.id DESC LIMIT :limit OFFSET :offset"),
            params,
        ).all()
        if offset == 0 and len(rows) < limit:
            total = len(rows)  # the whole result is on this page: no second query
        else:
            total = uow.conn.execute(
                text(
                    """SELECT count(*) FROM user_miners um
                         JOIN miners m ON m.id = um.miner_id AND m.tenant_id = um.tenant_id
                        WHERE um.user_id = :user_id"""
                    + filters
                ),
                params,
            ).scalar_one()
        items = with_pools(uow.conn, [miner_json(r) for r in rows])
    return {"items": items, "total": total, "limit": limit, "offset": offset}


_models_cache: tuple[float, dict[str, Any]] | None = None


def list_models() -> dict[str, Any]:
    """The model catalogue (global reference data, no tenant), cached in-process for a few minutes."""
    global _models_cache
    now = time.monotonic()
    if _models_cache is not None and _models_cache[0] > now:
        return _models_cache[1]
    with api_engine().connect() as conn:
        rows = conn.execute(
            text(
                """SELECT id, manufacturer, name, hashrate_ths, power_w, efficiency_j_th, release_year, algorithm
                     FROM miner_models ORDER BY manufacturer, name, id"""
            )
        ).all()
    result = {
        "items": [
            {
                "id": r.id,
                "manufacturer": r.manufacturer,
                "name": r.name,
                "hashrate_ths": float(r.hashrate_ths),
                "power_w": int(round(r.power_w)),
                "efficiency_j_th": round(float(r.efficiency_j_th), 4),
                "release_year": r.release_year,
                "algorithm": r.algorithm,
            }
            for r in rows
        ]
    }
    _models_cache = (now + MODELS_CACHE_SECONDS, result)
    return result


# --- writes ------------------------------------------------------------------------------------------------


def _models(conn: Connection, model_ids: Sequence[str]) -> dict[str, tuple[float, float]]:
    rows = conn.execute(
        text("SELECT id, hashrate_ths, power_w FROM miner_models WHERE id = ANY(:ids)"), {"ids": list(model_ids)}
    ).all()
    return {r.id: (float(r.hashrate_ths), float(r.power_w)) for r in rows}


# The model check, the miner and its owner link in one statement, planned once per connection: a POST is three
# statements fewer on the hot path (each a round trip and, for the insert, 0.1 ms of planning a call).
# `model_known` tells an unknown model (no row inserted, 422) from a taken serial number (409).
_CREATE_MINER = Prepared(
    "create_miner",
    f"""WITH mm AS (SELECT id, hashrate_ths, power_w FROM miner_models WHERE id = CAST(:model_id AS text)),
            m AS (
              INSERT INTO miners (tenant_id, model_id, label, serial_number, status, hashrate_ths, power_w,
                                  electricity_price_usd_kwh, pool_fee_pct, hosting_site, purchase_price_usd)
              SELECT CAST(:tenant_id AS text), mm.id, CAST(:label AS text), CAST(:serial_number AS text),
                     CAST(:status AS text), CAST(:hashrate_ths AS float8), CAST(:power_w AS float8),
                     CAST(:electricity_price_usd_kwh AS float8), CAST(:pool_fee_pct AS float8),
                     CAST(:hosting_site AS text), CAST(:purchase_price_usd AS numeric)
                FROM mm
              ON CONFLICT (tenant_id, serial_number) DO NOTHING
              RETURNING *),
            um AS (INSERT INTO user_miners (tenant_id, user_id, miner_id)
                   SELECT m.tenant_id, CAST(:user_id AS text), m.id FROM m)
       SELECT mm.id IS NOT NULL AS model_known, {_MINER_COLUMNS}
         FROM (SELECT 1) AS one LEFT JOIN mm ON true LEFT JOIN m ON true""",
)


def create_miner(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal

    def work(uow: UnitOfWork) -> Outcome:
        row = _CREATE_MINER(uow.conn, {
            "tenant_id": principal.tenant_id,
            "user_id": principal.user_id,
            "model_id": body["model_id"],
            "label": body.get("label"),
            "serial_number": body.get("serial_number"),
            "status": body.get("status", "active"),
            "hashrate_ths": body.get("hashrate_ths"),
            "power_w": body.get("power_w"),
            "electricity_price_usd_kwh": body.get("electricity_price_usd_kwh"),
            "pool_fee_pct": body.get("pool_fee_pct", 2.0),
            "hosting_site": body.get("hosting_site"),
            "purchase_price_usd": body.get("purchase_price_usd"),
        }).one()
        if not row.model_known:
            raise Unprocessable(
                f"Unknown miner model {body['model_id']!r}",
                errors=[{"field": "model_id", "message": f"unknown miner model {body['model_id']!r}"}],
            )
        if row.id is None:
            raise Conflict(
                f"Serial number {body.get('serial_number')} is already used in this tenant",
                problem_type=TYPE_DUPLICATE_SERIAL,
            )
        miner = miner_json(row)
        if body.get("pool") is not None:
            _store_pool(uow.conn, principal.tenant_id, miner["id"], body["pool"])
            with_pools(uow.conn, [miner])
        else:
            miner["pool"] = None  # a miner created a moment ago has no pool row unless it was given one
        uow.emit(
            caller.event(
                "miner.added",
                MinerAdded(
                    miner_id=miner["id"],
                    model_id=miner["model_id"],
                    status=miner["status"],
                    label=miner["label"],
                    serial_number=miner["serial_number"],
                    hashrate_ths=miner["hashrate_ths"],
                    power_w=miner["power_w"],
                ),
                entity_id=miner["id"],
            )
        )
        uow.audit(
            caller.audit("miner.create", "miner", miner["id"],
                         {"model_id": miner["model_id"], "serial_number": miner["serial_number"],
                          "status": miner["status"], "pool": _pool_audit(body.get("pool"))})
        )
        return Outcome(201, miner, {"Location": f"/api/miners/{miner['id']}"})

    return run_write(caller, "create_miner", {}, _fingerprinted(body), work)


def _lock_owned(conn: Connection, principal: Principal, miner_id: str) -> Any:
    """The caller's miner row (status, label, hosting_site), locked until the transaction ends; 404 otherwise.
    FOR UPDATE OF m: concurrent changes of one miner queue here, so each sees the state it changes."""
    row = conn.execute(
        text(
            """SELECT m.status, m.label, m.hosting_site FROM miners m
                 JOIN user_miners um ON um.tenant_id = m.tenant_id AND um.miner_id = m.id
                                    AND um.user_id = :user_id
                WHERE m.id = :miner_id
                FOR UPDATE OF m"""
        ),
        {"user_id": principal.user_id, "miner_id": miner_id},
    ).first()
    if row is None:
        raise NotFound(f"Miner {miner_id} not found")
    return row


def change_status(caller: Caller, miner_id: str, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    target = body["status"]
    reason = body.get("reason")

    def work(uow: UnitOfWork) -> Outcome:
        current = _lock_owned(uow.conn, principal, miner_id).status
        try:
            new_status = miner_status.transition(current, target)
        except miner_status.InvalidTransition as exc:
            raise Conflict(f"Miner {miner_id} {exc}", problem_type=TYPE_INVALID_TRANSITION) from None
        row = uow.conn.execute(
            text(
                f"""WITH m AS (UPDATE miners SET status = :status WHERE id = :miner_id RETURNING *)
                    SELECT {_MINER_COLUMNS} FROM m JOIN miner_models mm ON mm.id = m.model_id"""
            ),
            {"status": new_status.value, "miner_id": miner_id},
        ).one()
        miner = with_pools(uow.conn, [miner_json(row)])[0]
        uow.emit(
            caller.event(
                "miner.status_changed",
                MinerStatusChanged(miner_id=miner_id, from_status=current, to_status=new_status.value, reason=reason),
                entity_id=miner_id,
            )
        )
        uow.audit(
            caller.audit("miner.status_change", "miner", miner_id,
                         {"from": current, "to": new_status.value, "reason": reason})
        )
        return Outcome(200, miner)

    return run_write(caller, "change_miner_status", {"id": miner_id}, body, work)


_UPDATABLE = ("label", "hosting_site")


def update_miner(caller: Caller, miner_id: str, body: dict[str, Any]) -> Outcome:
    """Label, hosting site and/or pool of one of the caller's miners; emits miner.updated naming what changed."""
    principal = caller.principal

    def work(uow: UnitOfWork) -> Outcome:
        current = _lock_owned(uow.conn, principal, miner_id)
        changed = sorted(f for f in _UPDATABLE if f in body and body[f] != getattr(current, f))
        if changed:
            uow.conn.execute(
                text(f"UPDATE miners SET {', '.join(f'{f} = :{f}' for f in changed)} WHERE id = :miner_id"),
                {"miner_id": miner_id, **{f: body[f] for f in changed}},
            )
        if "pool" in body:
            changed.append("pool")
            password_set = _store_pool(uow.conn, principal.tenant_id, miner_id, body["pool"])
        else:
            password_set = bool(uow.conn.execute(
                text("SELECT ciphertext IS NOT NULL FROM miner_pools WHERE miner_id = :m"), {"m": miner_id}
            ).scalar_one_or_none())
        row = uow.conn.execute(
            text(_OWNED_MINERS + " AND m.id = :miner_id"), {"user_id": principal.user_id, "miner_id": miner_id}
        ).one()
        miner = with_pools(uow.conn, [miner_json(row)])[0]
        uow.emit(
            caller.event(
                "miner.updated",
                MinerUpdated(miner_id=miner_id, changed=sorted(changed), pool_password_set=password_set),
                entity_id=miner_id,
            )
        )
        details: dict[str, Any] = {"changed": sorted(changed)}
        details.update({f: body[f] for f in changed if f in _UPDATABLE})
        if "pool" in body:
            details["pool"] = _pool_audit(body["pool"])
        uow.audit(caller.audit("miner.update", "miner", miner_id, details))
        return Outcome(200, miner)

    return run_write(caller, "update_miner", {"id": miner_id}, _fingerprinted(body), work)


def bulk_import(caller: Caller, body: dict[str, Any]) -> Outcome:
    items: list[dict[str, Any]] = body["items"]
    if len(items) > MAX_BULK_ITEMS:
        raise TooManyItems(f"At most {MAX_BULK_ITEMS} items per bulk import, got {len(items)}")
    principal = caller.principal

    # Duplicate serial numbers inside the batch: say which items, before touching the database.
    serial_counts = Counter(i["serial_number"] for i in items if i.get("serial_number"))
    dupes = {s for s, n in serial_counts.items() if n > 1}
    if dupes:
        errors = [
            {"field": f"items[{n}].serial_number",
             "message": f"serial number {i['serial_number']!r} repeats in the batch"}
            for n, i in enumerate(items) if i.get("serial_number") in dupes
        ][:MAX_FIELD_ERRORS]
        raise Conflict(f"{len(dupes)} serial number(s) appear more than once in the batch",
                       errors=errors, problem_type=TYPE_DUPLICATE_SERIAL)

    def work(uow: UnitOfWork) -> Outcome:
        model_ids = sorted({i["model_id"] for i in items})
        known = _models(uow.conn, model_ids)
        unknown = [
            {"field": f"items[{n}].model_id", "message": f"unknown miner model {i['model_id']!r}"}
            for n, i in enumerate(items) if i["model_id"] not in known
        ]
        if unknown:
            raise Unprocessable("One or more items refer to an unknown miner model", errors=unknown[:MAX_FIELD_ERRORS])
        serials = list(serial_counts)
        if serials:
            taken = set(uow.conn.execute(
                text("""SELECT serial_number FROM miners
                         WHERE serial_number IN (SELECT json_array_elements_text(CAST(:s AS json)))"""),
                {"s": json.dumps(serials)},
            ).scalars())
            if taken:
                errors = [
                    {"field": f"items[{n}].serial_number",
                     "message": f"serial number {i['serial_number']!r} is already used in this tenant"}
                    for n, i in enumerate(items) if i.get("serial_number") in taken
                ][:MAX_FIELD_ERRORS]
                raise Conflict(f"{len(taken)} serial number(s) are already used in this tenant",
                               errors=errors, problem_type=TYPE_DUPLICATE_SERIAL)

        ids = [str(uuid.uuid4()) for _ in items]
        # One INSERT ... SELECT FROM json_to_recordset(<one JSON text>): a single statement and round trip for
        # up to 10,000 rows, parsed by PostgreSQL's C JSON parser (much cheaper than 110,000 bound array
        # elements). COPY FROM is not an option: it is not allowed on tables with row-level security.
        rows = json.dumps([
            {
                "id": miner_id,
                "model_id": i["model_id"],
                "label": i.get("label"),
                "serial_number": i.get("serial_number"),
                "status": i.get("status", "active"),
                "hashrate_ths": i.get("hashrate_ths"),
                "power_w": i.get("power_w"),
                "price": i.get("electricity_price_usd_kwh"),
                "fee": i.get("pool_fee_pct", 2.0),
                "site": i.get("hosting_site"),
                "purchase": i.get("purchase_price_usd"),
            }
            for miner_id, i in zip(ids, items, strict=True)
        ])
        inserted = uow.conn.execute(
            text(
                """WITH ins AS (
                     INSERT INTO miners (id, tenant_id, model_id, label, serial_number, status, hashrate_ths, power_w,
                                         electricity_price_usd_kwh, pool_fee_pct, hosting_site, purchase_price_usd)
                     SELECT r.id, :tenant_id, r.model_id, r.label, r.serial_number, r.status, r.hashrate_ths,
                            r.power_w, r.price, r.fee, r.site, r.purchase
                       FROM json_to_recordset(CAST(:rows AS json))
                            AS r(id uuid, model_id text, label text, serial_number text, status text,
                                 hashrate_ths float8, power_w float8, price float8, fee float8, site text,
                                 purchase numeric)
                     ON CONFLICT (tenant_id, serial_number) DO NOTHING
                     RETURNING id)
                   SELECT count(*), now() FROM ins"""
            ),
            {"tenant_id": principal.tenant_id, "rows": rows},
        ).one()
        count, created_at = inserted
        if count != len(items):
            # A serial number was taken by a concurrent write after our check.
            raise Conflict("A serial number of the batch was taken by a concurrent write; retry",
                           problem_type=TYPE_DUPLICATE_SERIAL)
        uow.conn.execute(
            text(
                """INSERT INTO user_miners (tenant_id, user_id, miner_id)
                   SELECT :tenant_id, :user_id, CAST(id AS uuid)
                     FROM json_array_elements_text(CAST(:ids AS json)) AS id"""
            ),
            {"tenant_id": principal.tenant_id, "user_id": principal.user_id, "ids": json.dumps(ids)},
        )
        for miner_id, item in zip(ids, items, strict=True):
            if item.get("pool") is not None:  # sealed one by one: each record has its own data key
                _store_pool(uow.conn, principal.tenant_id, miner_id, item["pool"])
        batch_id = str(uuid.uuid4())
        uow.emit(
            caller.event(
                "miner.bulk_imported",
                MinerBulkImported(count=count, batch_id=batch_id, model_ids=model_ids),
                entity_id=batch_id,
            )
        )
        uow.audit(caller.audit("miner.bulk_import", "miner_batch", batch_id,
                               {"count": count, "model_ids": model_ids}))
        result = {"batch_id": batch_id, "count": count, "model_ids": model_ids, "created_at": iso(created_at)}
        return Outcome(201, result)

    hashed = {**body, "items": [_fingerprinted(i) for i in items]}
    return run_write(caller, "bulk_import_miners", {}, hashed, work)
