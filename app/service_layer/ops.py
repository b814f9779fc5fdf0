"""Maintenance windows: schedule one (POST /api/ops/maintenance) and read a day's schedule (GET /api/ops/schedule).

A window belongs to one of the caller's miners. Its row, one ops.maintenance_scheduled event and one audit row
commit together (run_write). Windows of one miner never overlap: the check below names the window in the way,
and an exclusion constraint (migrations/0051) refuses the loser of two racing requests; both answer 409.

The day's schedule is cached under ops_schedule:{uid}:{yyyymmdd} (TTL 1800 s, stale-while-revalidate); the
intel consumer invalidates exactly the days a new window touches (the event's `days`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from app.adapters.cache import TTL_OPS_SCHEDULE, Cache, analytics_key, get_cache, ops_schedule_key
from app.adapters.db import api_engine
from app.adapters.tokens import Principal
from app.domain.maintenance import days_touched
from app.service_layer.errors import Conflict, NotFound, Unprocessable
from app.service_layer.idempotency import Outcome
from app.service_layer.market import TYPE_INVALID_TIME, parse_time
from app.service_layer.miners import iso
from app.service_layer.read_models import ForeignUser, read_transaction, utcnow
from app.service_layer.unit_of_work import UnitOfWork
from app.service_layer.writes import Caller, run_write
from generated.events import OpsMaintenanceScheduled

MAX_WINDOW = timedelta(days=14)
TYPE_OVERLAP = "urn:hashinsight:problem:maintenance-overlap"
SCHEDULE_TTL_SECONDS: float = TTL_OPS_SCHEDULE  # a module attribute so tests can shorten it

_WINDOW_COLUMNS = """w.id::text AS id, w.miner_id::text AS miner_id, m.label AS miner_label, w.starts_at,
                     w.ends_at, w.reason, w.created_at"""


def window_json(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": m["id"], "miner_id": m["miner_id"], "miner_label": m["miner_label"],
        "starts_at": iso(m["starts_at"]), "ends_at": iso(m["ends_at"]), "reason": m["reason"],
        "days": [d.isoformat() for d in days_touched(m["starts_at"], m["ends_at"])],
        "created_at": iso(m["created_at"]),
    }


def _invalid(detail: str, field: str, message: str) -> Unprocessable:
    return Unprocessable(detail, errors=[{"field": field, "message": message}], problem_type=TYPE_INVALID_TIME)


def schedule_maintenance(caller: Caller, body: dict[str, Any]) -> Outcome:
    principal = caller.principal
    miner_id = body["miner_id"].lower()
    starts_at = parse_time(body["starts_at"], "starts_at")
    ends_at = parse_time(body["ends_at"], "ends_at")
    reason = body.get("reason")
    if ends_at <= starts_at:
        raise _invalid("ends_at must be after starts_at", "ends_at", "not after starts_at")
    if ends_at - starts_at > MAX_WINDOW:
        raise _invalid("A maintenance window lasts at most 14 days", "ends_at", "more than 14 days after starts_at")
    if ends_at <= datetime.now(timezone.utc):
        raise _invalid("The window is over already: ends_at must be in the future", "ends_at", "in the past")

    def work(uow: UnitOfWork) -> Outcome:
        # FOR SHARE OF m: the miner cannot be deleted or change owner under the new window.
        label = uow.conn.execute(
            text("""SELECT m.label FROM miners m
                      JOIN user_miners um ON um.tenant_id = m.tenant_id AND um.miner_id = m.id
                                         AND um.user_id = :u
                     WHERE m.id = :m FOR SHARE OF m"""),
            {"u": principal.user_id, "m": miner_id},
        ).first()
        if label is None:
            raise NotFound(f"Miner {miner_id} not found")
        clash = uow.conn.execute(
            text("""SELECT id::text, starts_at, ends_at FROM maintenance_windows
                     WHERE miner_id = :m AND tstzrange(starts_at, ends_at) && tstzrange(:s, :e)
                     ORDER BY starts_at LIMIT 1"""),
            {"m": miner_id, "s": starts_at, "e": ends_at},
        ).first()
        if clash is not None:
            raise _overlap(miner_id, clash.id, clash.starts_at, clash.ends_at)
        try:
            with uow.conn.begin_nested():
                row = uow.conn.execute(
                    text(f"""WITH w AS (
                               INSERT INTO maintenance_windows (tenant_id, user_id, miner_id, starts_at, ends_at,
                                                                reason)
                               VALUES (:t, :u, :m, :s, :e, :reason) RETURNING *)
                             SELECT {_WINDOW_COLUMNS} FROM w JOIN miners m ON m.id = w.miner_id"""),
                    {"t": principal.tenant_id, "u": principal.user_id, "m": miner_id, "s": starts_at, "e": ends_at,
                     "reason": reason},
                ).one()
        except IntegrityError as exc:
            if getattr(exc.orig, "pgcode", None) == "23P01":  # exclusion_violation: a racing window won
                raise Conflict(f"Miner {miner_id} already has a maintenance window overlapping "
                               f"{iso(starts_at)} - {iso(ends_at)}", problem_type=TYPE_OVERLAP) from None
            raise
        window = window_json(row)
        uow.emit(caller.event(
            "ops.maintenance_scheduled",
            OpsMaintenanceScheduled(miner_id=miner_id, day=window["days"][0], window_start=window["starts_at"],
                                    window_end=window["ends_at"], reason=reason, window_id=window["id"],
                                    days=window["days"]),
            entity_id=window["id"],
        ))
        uow.audit(caller.audit("ops.maintenance_schedule", "maintenance_window", window["id"],
                               {"miner_id": miner_id, "starts_at": window["starts_at"],
                                "ends_at": window["ends_at"], "reason": reason}))
        return Outcome(201, window, {"Location": f"/api/ops/schedule?day={window['days'][0]}"})

    outcome = run_write(caller, "schedule_maintenance", {}, body, work)
    # The page lists upcoming windows (page_context): now, not only once the intel consumer has the event.
    get_cache().invalidate(analytics_key(principal.user_id))
    return outcome


def _overlap(miner_id: str, window_id: str, starts_at: datetime, ends_at: datetime) -> Conflict:
    return Conflict(f"Miner {miner_id} already has maintenance window {window_id} from {iso(starts_at)} to "
                    f"{iso(ends_at)}, which overlaps the requested one", problem_type=TYPE_OVERLAP)


# --- reads -------------------------------------------------------------------------------------------------

_DAY_WINDOWS = text(
    f"""SELECT {_WINDOW_COLUMNS}
          FROM maintenance_windows w JOIN miners m ON m.id = w.miner_id
         WHERE w.user_id = :u AND w.starts_at < :day_end AND w.ends_at > :day_start
         ORDER BY w.starts_at, w.id"""
)
_UPCOMING = text(
    f"""SELECT {_WINDOW_COLUMNS}
          FROM maintenance_windows w JOIN miners m ON m.id = w.miner_id
         WHERE w.user_id = :u AND w.ends_at > :now
         ORDER BY w.starts_at, w.id
         LIMIT :limit"""
)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def load_schedule(engine: Engine, tenant_id: str, user_id: str, day: date) -> dict[str, Any]:
    """The cache entry of ops_schedule:{uid}:{yyyymmdd}."""
    start, end = day_bounds(day)
    with read_transaction(engine, tenant_id) as conn:
        _visible(conn, tenant_id, user_id)
        rows = conn.execute(_DAY_WINDOWS, {"u": user_id, "day_start": start, "day_end": end}).all()
    return {"tenant_id": tenant_id, "day": day.isoformat(), "generated_at": iso(utcnow()),
            "windows": [window_json(r) for r in rows]}


def _visible(conn: Connection, tenant_id: str, user_id: str) -> None:
    if conn.execute(text("SELECT 1 FROM users WHERE id = :u"), {"u": user_id}).first() is None:
        raise ForeignUser(tenant_id, user_id)


def schedule_view(principal: Principal, day: date | None = None, *, cache: Cache | None = None,
                  engine: Engine | None = None) -> dict[str, Any]:
    """GET /api/ops/schedule: the day's windows through ops_schedule:{uid}:{yyyymmdd}."""
    day = day or utcnow().date()
    cache = cache or get_cache()
    tenant_id, user_id = principal.tenant_id, principal.user_id

    def loader() -> dict[str, Any]:
        return load_schedule(engine or api_engine(), tenant_id, user_id, day)

    result = cache.get_or_load_result(ops_schedule_key(user_id, day), loader, SCHEDULE_TTL_SECONDS)
    if result.value.get("tenant_id") != tenant_id:
        raise ForeignUser(tenant_id, user_id)
    doc = {k: v for k, v in result.value.items() if k != "tenant_id"}
    return doc | {"stale": result.stale}


def upcoming_windows(conn: Connection, user_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The caller's windows not over yet, soonest first (the analytics page)."""
    return [window_json(r) for r in conn.execute(_UPCOMING, {"u": user_id, "now": utcnow(), "limit": limit})]


def schedule_keys(user_id: str, days: Iterable[str]) -> list[str]:
    """The cache keys of a window's days (the consumer invalidates exactly these)."""
    return [ops_schedule_key(user_id, date.fromisoformat(d)) for d in days]
