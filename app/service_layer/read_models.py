"""Read side: the caller's portfolio and forecast, exactly as GET /api/portfolio, GET /api/intelligence/forecast
and GET /analytics/main show them.

One function per view, shared by the JSON API and the HTML page, so the two can never disagree: the page
renders the very document the API returns (same cache entry, same rounding).

Where the numbers come from:

- Portfolio: the derived `user_portfolio` row and its `user_analytics` rows (written by the portfolio consumer),
  plus the `network_snapshots` row they were computed with (`snapshot_ts`) and the model names. A user the
  consumer has never recalculated (fresh seed, brand-new user) has no row yet; then the same domain function the
  consumer uses (`build_portfolio`) runs here on the fleet and the latest snapshot, WITHOUT writing (the API
  role cannot write derived tables, and a read must not race the consumer), so a fresh token works at once.
- Forecast: the `forecast_daily` rows from today (UTC) on (written by the intel consumer); without any, the
  domain's `forecast_fleet` runs here, again without writing.

Both go through the stale-while-revalidate cache (user_portfolio:{uid} TTL 600 s, forecast:{uid} TTL 1800 s).
The portfolio consumer writes user_portfolio:{uid} through when it recalculates a user (`portfolio_entry`, from
what its transaction wrote): the entry a load here would build from those rows, so the page it notifies reads a
hit.
Loaders open their own read-only REPEATABLE READ transaction (the cache may call them from a background
thread), so the portfolio row and its per-model rows come from one snapshot even while the consumer rewrites them.

Cache keys carry only the user id, while the data is tenant-scoped, so the tenant is checked both ways: a loader
refuses (raises ForeignUser, nothing is cached) when the user is not visible in the caller's tenant, and a cached
document whose tenant differs from the caller's is refused too. A token naming another tenant's user can
therefore neither read that user's cached portfolio nor overwrite it with an empty one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text

from app.adapters.cache import (
    TTL_FORECAST,
    TTL_PORTFOLIO,
    Cache,
    CacheResult,
    forecast_key,
    get_cache,
    portfolio_key,
)
from app.adapters.db import api_engine
from app.adapters.prepared import Prepared
from app.domain.forecast import (
    DEFAULT_BTC_PRICE_GROWTH_PCT_PER_DAY,
    DEFAULT_DIFFICULTY_GROWTH_PCT_PER_DAY,
    DEFAULT_HORIZON_DAYS,
    MAX_HORIZON_DAYS,
    forecast_fleet,
)
from app.domain.miner_status import ALL_STATUSES, is_hashing
from app.domain.mining import DEFAULT_ELECTRICITY_PRICE_USD_KWH, NetworkState, round_btc, round_usd
from app.domain.portfolio import MinerFacts, Portfolio, build_portfolio, every
from app.service_layer.portfolio import NoNetworkSnapshot, Written, latest_network, load_fleet

# Module attributes, read at call time, so tests can shorten them with monkeypatch.
PORTFOLIO_TTL_SECONDS: float = TTL_PORTFOLIO
FORECAST_TTL_SECONDS: float = TTL_FORECAST

SOURCE_DERIVED = "derived"  # user_portfolio / forecast_daily rows written by the consumers
SOURCE_COMPUTED = "computed"  # no rows yet: computed on the read path, not stored

_STATUS_NAMES = tuple(s.value for s in ALL_STATUSES)


class ForeignUser(PermissionError):
    """The caller's user is not visible in the caller's tenant (not provisioned there, or another tenant's)."""

    def __init__(self, tenant_id: str, user_id: str) -> None:
        super().__init__(f"user {user_id!r} is not provisioned in tenant {tenant_id!r}")
        self.tenant_id = tenant_id
        self.user_id = user_id


@dataclass(frozen=True)
class View:
    """A document as the API returns it, plus how the cache answered (for the page and for logs)."""

    document: dict[str, Any]
    source: str  # derived | computed
    cache_status: str  # fresh | stale | miss | bypass (Redis unavailable)
    stored_at: float | None  # epoch seconds the cached value was computed
    raw: str | None = field(default=None, compare=False, repr=False)  # the cache entry's text, on a hit


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def read_transaction(engine: Engine, tenant_id: str) -> Iterator[Connection]:
    """A read-only REPEATABLE READ transaction scoped to `tenant_id` by RLS (SET LOCAL, so the setting dies with
    the transaction and never leaks to the next user of the pooled connection)."""
    with engine.connect() as conn, conn.begin():
        # One round trip for the transaction's mode (before its first query) and its tenant. Not the driver's
        # isolation option: that costs a SET on the way in and another when the connection goes back to the pool.
        conn.execute(_READ_ONLY_FOR_TENANT, {"t": tenant_id})
        yield conn


_READ_ONLY_FOR_TENANT = text(
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT set_config('app.tenant_id', :t, true)")


def _owner_price(conn: Connection, tenant_id: str, user_id: str) -> float:
    price = conn.execute(
        text("SELECT electricity_price_usd_kwh FROM users WHERE tenant_id = :t AND id = :u"),
        {"t": tenant_id, "u": user_id},
    ).first()
    if price is None:
        raise ForeignUser(tenant_id, user_id)
    return float(price[0]) if price[0] is not None else DEFAULT_ELECTRICITY_PRICE_USD_KWH


def _check_tenant(value: dict[str, Any], tenant_id: str, user_id: str) -> None:
    if value.get("tenant_id") != tenant_id:
        raise ForeignUser(tenant_id, user_id)


# -- presentation rounding (docs: rounding belongs at the edge, after aggregation) ------------------------------


def _ths(value: float) -> float:
    return round(float(value), 4)


def _watts(value: float) -> int:
    return int(round(float(value)))


def _usd_or_none(value: float | None) -> float | None:
    return None if value is None else round_usd(float(value))


def _network_document(network: NetworkState) -> dict[str, Any]:
    return {
        "ts": network.ts,
        "btc_price_usd": network.btc_price_usd,
        "difficulty": network.difficulty,
        "network_hashrate_ehs": network.network_hashrate_ehs,
        "block_reward_btc": network.block_reward_btc,
    }


# -- portfolio --------------------------------------------------------------------------------------------------

_PORTFOLIO_ROW = text(
    """SELECT miners_total, miners_by_status, active_hashrate_ths, active_power_w, daily_btc, daily_revenue_usd,
              daily_cost_usd, daily_profit_usd, break_even_usd_kwh, snapshot_ts, updated_at, last_event_id
         FROM user_portfolio WHERE tenant_id = :t AND user_id = :u"""
)
_ANALYTICS_ROWS = text(
    """SELECT a.model_id, mm.name, a.miners, a.active_miners, a.hashrate_ths, a.power_w, a.daily_btc,
              a.daily_revenue_usd, a.daily_cost_usd, a.daily_profit_usd
         FROM user_analytics a LEFT JOIN miner_models mm ON mm.id = a.model_id
        WHERE a.tenant_id = :t AND a.user_id = :u
        ORDER BY a.model_id"""
)
# Equality on the partition key: one daily partition is read. Prepared: planning over every partition of the
# table cost more than the read (app/adapters/prepared.py).
_SNAPSHOT_AT = Prepared(
    "snapshot_at",
    """SELECT btc_price_usd, difficulty, block_reward_btc, ts, network_hashrate_ehs
         FROM network_snapshots WHERE ts = CAST(:ts AS timestamptz)""",
)


def _model_document(model_id: str, name: str | None, miners: int, active: int, hashrate: float, power: float,
                    btc: float, revenue: float, cost: float, profit: float) -> dict[str, Any]:
    # `model_name` is the one field beyond the contract's ModelBreakdown (which allows extra members): the page
    # shows it and the API must return exactly what the page shows.
    return {
        "model_id": model_id,
        "model_name": name,
        "miners": int(miners),
        "active_miners": int(active),
        "hashrate_ths": _ths(hashrate),
        "power_w": _watts(power),
        "daily_btc": round_btc(btc),
        "daily_revenue_usd": round_usd(revenue),
        "daily_cost_usd": round_usd(cost),
        "daily_profit_usd": round_usd(profit),
    }


def _portfolio_from_rows(conn: Connection, tenant_id: str, user_id: str, price: float,
                         row: Sequence[Any]) -> dict[str, Any]:
    (total, by_status, hashrate, power, btc, revenue, cost, profit, break_even, snapshot_ts, updated_at,
     last_event_id) = row
    by_model = [_model_document(*r) for r in conn.execute(_ANALYTICS_ROWS, {"t": tenant_id, "u": user_id})]
    snapshot = _SNAPSHOT_AT(conn, {"ts": snapshot_ts}).first() if snapshot_ts is not None else None
    return _portfolio_document(
        tenant_id, user_id, as_of=updated_at, total=total, by_status=by_status or {}, hashrate=hashrate,
        power=power, btc=btc, revenue=revenue, cost=cost, profit=profit, break_even=break_even, price=price,
        # The snapshot may have been replaced since (the seed rewrites its rows); then `network` is left out,
        # as the contract allows, rather than showing a snapshot the figures were not computed with.
        network=NetworkState(*snapshot) if snapshot is not None else None,
        by_model=by_model, last_event_id=last_event_id,
    )


def _document_of(tenant_id: str, user_id: str, p: Portfolio, price: float, as_of: datetime,
                 last_event_id: str | None) -> dict[str, Any]:
    by_model = [
        _model_document(m.model_id, m.model_name, m.miners, m.active_miners, m.hashrate_ths, m.power_w,
                        m.daily_btc, m.daily_revenue_usd, m.daily_cost_usd, m.daily_profit_usd)
        for m in p.by_model
    ]
    return _portfolio_document(
        tenant_id, user_id, as_of=as_of, total=p.miners_total, by_status=p.miners_by_status,
        hashrate=p.active_hashrate_ths, power=p.active_power_w, btc=p.daily_btc, revenue=p.daily_revenue_usd,
        cost=p.daily_cost_usd, profit=p.daily_profit_usd, break_even=p.break_even_usd_kwh, price=price,
        network=p.network, by_model=by_model, last_event_id=last_event_id,
    )


def _portfolio_computed(conn: Connection, tenant_id: str, user_id: str, price: float,
                        now: datetime) -> dict[str, Any]:
    fleet = load_fleet(conn, user_id)
    try:
        network = latest_network(conn)
    except NoNetworkSnapshot:
        return _portfolio_without_network(tenant_id, user_id, price, fleet, now)
    return _document_of(tenant_id, user_id, build_portfolio(fleet, network), price, now, None)


def portfolio_entry(tenant_id: str, user_id: str, written: Written) -> dict[str, Any]:
    """The cache entry of user_portfolio:{uid} that load_portfolio builds from the rows `written` describes, once
    they are committed: the same figures (the rows hold the floats the portfolio has), the network snapshot
    they were computed with, the models in model_id order (a byte order, as the database's C collation sorts
    the breakdown rows), the row's own stamps. tests/integration/pipeline/test_page_notifications.py holds the
    two equal."""
    return {"source": SOURCE_DERIVED, "tenant_id": tenant_id,
            "portfolio": _document_of(tenant_id, user_id, written.portfolio, written.owner_price_usd_kwh,
                                      written.updated_at, written.last_event_id)}


def _portfolio_without_network(tenant_id: str, user_id: str, price: float, fleet: list[MinerFacts],
                               now: datetime) -> dict[str, Any]:
    """No snapshot to price the fleet with (an unseeded system): counts only, zero money, no `network`."""
    by_status = {s: 0 for s in _STATUS_NAMES}
    models: dict[str, list[MinerFacts]] = {}
    for m in fleet:
        by_status[m.status] = by_status.get(m.status, 0) + m.count
        models.setdefault(m.model_id, []).append(m)
    by_model = [
        _model_document(mid, ms[0].model_name, sum(m.count for m in ms),
                        sum(m.count for m in ms if is_hashing(m.status)),
                        math.fsum(every((m.hashrate_ths, m.count) for m in ms if is_hashing(m.status))),
                        math.fsum(every((m.power_w, m.count) for m in ms if is_hashing(m.status))),
                        0.0, 0.0, 0.0, 0.0)
        for mid, ms in sorted(models.items())
    ]
    return _portfolio_document(
        tenant_id, user_id, as_of=now, total=sum(m.count for m in fleet), by_status=by_status,
        hashrate=math.fsum(m["hashrate_ths"] for m in by_model), power=sum(m["power_w"] for m in by_model),
        btc=0.0, revenue=0.0, cost=0.0, profit=0.0, break_even=None, price=price, network=None,
        by_model=by_model, last_event_id=None,
    )


def _portfolio_document(tenant_id: str, user_id: str, *, as_of: datetime, total: int, by_status: dict[str, int],
                        hashrate: float, power: float, btc: float, revenue: float, cost: float, profit: float,
                        break_even: float | None, price: float, network: NetworkState | None,
                        by_model: list[dict[str, Any]], last_event_id: str | None) -> dict[str, Any]:
    """The contract's Portfolio, key for key."""
    doc: dict[str, Any] = {
        "user_id": user_id,
        "tenant_id": tenant_id,
        "as_of": as_of,
        "miners_total": int(total),
        # All five statuses, zeros included, whatever the jsonb holds (the schema forbids other keys).
        "miners_by_status": {s: int(by_status.get(s, 0)) for s in _STATUS_NAMES},
        "active_hashrate_ths": _ths(hashrate),
        "active_power_w": _watts(power),
        "daily_btc": round_btc(btc),
        "daily_revenue_usd": round_usd(revenue),
        "daily_cost_usd": round_usd(cost),
        "daily_profit_usd": round_usd(profit),
        "break_even_usd_kwh": _usd_or_none(break_even),
        "electricity_price_usd_kwh": round_usd(price),
    }
    if network is not None:
        doc["network"] = _network_document(network)
    doc["by_model"] = by_model
    doc["last_event_id"] = last_event_id
    return doc


def load_portfolio(engine: Engine, tenant_id: str, user_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The cache entry of user_portfolio:{uid}: {"source": derived|computed, "portfolio": <Portfolio>}."""
    with read_transaction(engine, tenant_id) as conn:
        price = _owner_price(conn, tenant_id, user_id)
        row = conn.execute(_PORTFOLIO_ROW, {"t": tenant_id, "u": user_id}).first()
        if row is not None:
            return {"source": SOURCE_DERIVED, "tenant_id": tenant_id,
                    "portfolio": _portfolio_from_rows(conn, tenant_id, user_id, price, row)}
        return {"source": SOURCE_COMPUTED, "tenant_id": tenant_id,
                "portfolio": _portfolio_computed(conn, tenant_id, user_id, price, now or utcnow())}


def portfolio_view(tenant_id: str, user_id: str, *, cache: Cache | None = None,
                   engine: Engine | None = None) -> View:
    """GET /api/portfolio and GET /analytics/main: the Portfolio document through user_portfolio:{uid}."""
    cache = cache or get_cache()

    def loader() -> dict[str, Any]:
        return load_portfolio(engine or api_engine(), tenant_id, user_id)

    result = cache.get_or_load_result(portfolio_key(user_id), loader, PORTFOLIO_TTL_SECONDS)
    _check_tenant(result.value, tenant_id, user_id)
    return _portfolio_of(result)


def fresh_portfolio_view(found: dict[str, CacheResult], tenant_id: str, user_id: str) -> View | None:
    """portfolio_view's answer from what Cache.fresh found (read on the event loop), when it holds
    user_portfolio:{uid} of the caller's tenant; None otherwise: then portfolio_view decides (stale, load, 403)."""
    result = found.get(portfolio_key(user_id))
    if result is None or not isinstance(result.value, dict) or result.value.get("tenant_id") != tenant_id:
        return None
    return _portfolio_of(result)


def _portfolio_of(result: CacheResult) -> View:
    return View(result.value["portfolio"], result.value["source"], result.status, result.stored_at, result.raw)


# -- forecast ---------------------------------------------------------------------------------------------------

_FORECAST_ROWS = Prepared(
    "forecast_rows",
    """SELECT day, btc_mined, revenue_usd, cost_usd, profit_usd, btc_price_usd, difficulty, computed_at
         FROM forecast_daily
        WHERE tenant_id = CAST(:t AS text) AND user_id = CAST(:u AS text) AND day >= CAST(:today AS date)
        ORDER BY day
        LIMIT CAST(:limit AS integer)""",
)


def _growth_pct(first: float, second: float, default: float) -> float:
    # The stored rows carry no assumptions; the day-over-day ratio recovers the growth rate they were made with.
    if first <= 0:
        return default
    return round((second / first - 1) * 100, 6)


def load_forecast(engine: Engine, tenant_id: str, user_id: str, today: date | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """The cache entry of forecast:{uid}: every day from `today` on (raw floats; views slice and round).

    From forecast_daily when it has rows (as many days as the intel consumer wrote: 30); otherwise computed
    here for the longest horizon the API serves (365 days: one cheap loop, see app.domain.forecast), not stored.
    """
    start = today or utcnow().date()
    with read_transaction(engine, tenant_id) as conn:
        price = _owner_price(conn, tenant_id, user_id)
        rows = _FORECAST_ROWS(
            conn, {"t": tenant_id, "u": user_id, "today": start, "limit": MAX_HORIZON_DAYS}
        ).all()
        fleet = load_fleet(conn, user_id)
        try:
            network: NetworkState | None = latest_network(conn)
        except NoNetworkSnapshot:
            network = None
    entry: dict[str, Any] = {"user_id": user_id, "tenant_id": tenant_id}
    if network is None and not rows:
        # Nothing to forecast with (an unseeded system): an empty forecast, not an error.
        return entry | {
            "source": SOURCE_COMPUTED, "generated_at": now or utcnow(), "days": [],
            "assumptions": {"btc_price_usd": 0.0, "btc_price_growth_pct_per_day": 0.0, "difficulty": 0.0,
                            "difficulty_growth_pct_per_day": 0.0, "block_reward_btc": 0.0,
                            "electricity_price_usd_kwh": price, "pool_fee_pct": 0.0},
        }
    if rows:
        days = [
            {"day": r.day, "btc_mined": r.btc_mined, "revenue_usd": r.revenue_usd, "cost_usd": r.cost_usd,
             "profit_usd": r.profit_usd, "btc_price_usd": r.btc_price_usd, "difficulty": r.difficulty}
            for r in rows
        ]
        base = (forecast_fleet(fleet, network, start, days=1, owner_electricity_price_usd_kwh=price).assumptions
                if network is not None else None)
        second = rows[1] if len(rows) > 1 else rows[0]
        assumptions = {
            "btc_price_usd": rows[0].btc_price_usd,
            "btc_price_growth_pct_per_day": _growth_pct(rows[0].btc_price_usd, second.btc_price_usd,
                                                        DEFAULT_BTC_PRICE_GROWTH_PCT_PER_DAY)
            if len(rows) > 1 else DEFAULT_BTC_PRICE_GROWTH_PCT_PER_DAY,
            "difficulty": rows[0].difficulty,
            "difficulty_growth_pct_per_day": _growth_pct(rows[0].difficulty, second.difficulty,
                                                         DEFAULT_DIFFICULTY_GROWTH_PCT_PER_DAY)
            if len(rows) > 1 else DEFAULT_DIFFICULTY_GROWTH_PCT_PER_DAY,
            # Not stored per row: the reward and the fleet's fee are what the consumer used unless the fleet or
            # the snapshot changed since, and then the consumer is about to rewrite the rows anyway.
            "block_reward_btc": base.block_reward_btc if base else 0.0,
            "electricity_price_usd_kwh": price,
            "pool_fee_pct": base.pool_fee_pct if base else 0.0,
        }
        return entry | {"source": SOURCE_DERIVED, "generated_at": max(r.computed_at for r in rows),
                        "days": days, "assumptions": assumptions}
    assert network is not None
    f = forecast_fleet(fleet, network, start, days=MAX_HORIZON_DAYS, owner_electricity_price_usd_kwh=price)
    a = f.assumptions
    return entry | {
        "source": SOURCE_COMPUTED,
        "generated_at": now or utcnow(),
        "days": [
            {"day": d.day, "btc_mined": d.btc_mined, "revenue_usd": d.revenue_usd, "cost_usd": d.cost_usd,
             "profit_usd": d.profit_usd, "btc_price_usd": d.btc_price_usd, "difficulty": d.difficulty}
            for d in f.days
        ],
        "assumptions": {
            "btc_price_usd": a.btc_price_usd, "btc_price_growth_pct_per_day": a.btc_price_growth_pct_per_day,
            "difficulty": a.difficulty, "difficulty_growth_pct_per_day": a.difficulty_growth_pct_per_day,
            "block_reward_btc": a.block_reward_btc, "electricity_price_usd_kwh": a.electricity_price_usd_kwh,
            "pool_fee_pct": a.pool_fee_pct,
        },
    }


def _forecast_document(entry: dict[str, Any], days: int, today: date, stale: bool) -> dict[str, Any]:
    """The contract's Forecast: `days` days from today, rounded; totals summed before rounding."""
    # The entry may have been cached before midnight UTC: drop the days that are past now.
    rows = [d for d in entry["days"] if d["day"] >= today.isoformat()][:days]
    a = dict(entry["assumptions"])
    if rows:  # the starting values are those of the first day served
        a["btc_price_usd"], a["difficulty"] = rows[0]["btc_price_usd"], rows[0]["difficulty"]
    return {
        "user_id": entry["user_id"],
        "generated_at": entry["generated_at"],
        "stale": stale,
        "assumptions": {
            "horizon_days": len(rows) or days,
            "btc_price_usd": round_usd(a["btc_price_usd"]),
            "btc_price_growth_pct_per_day": a["btc_price_growth_pct_per_day"],
            "difficulty": a["difficulty"],
            "difficulty_growth_pct_per_day": a["difficulty_growth_pct_per_day"],
            "block_reward_btc": a["block_reward_btc"],
            "electricity_price_usd_kwh": round_usd(a["electricity_price_usd_kwh"]),
            "pool_fee_pct": round(a["pool_fee_pct"], 4),
        },
        "days": [
            {"day": d["day"], "btc_mined": round_btc(d["btc_mined"]), "revenue_usd": round_usd(d["revenue_usd"]),
             "cost_usd": round_usd(d["cost_usd"]), "profit_usd": round_usd(d["profit_usd"]),
             "btc_price_usd": round_usd(d["btc_price_usd"]), "difficulty": d["difficulty"]}
            for d in rows
        ],
        "totals": {
            "btc_mined": round_btc(math.fsum(d["btc_mined"] for d in rows)),
            "revenue_usd": round_usd(math.fsum(d["revenue_usd"] for d in rows)),
            "cost_usd": round_usd(math.fsum(d["cost_usd"] for d in rows)),
            "profit_usd": round_usd(math.fsum(d["profit_usd"] for d in rows)),
        },
    }


def forecast_view(tenant_id: str, user_id: str, days: int = DEFAULT_HORIZON_DAYS, *, cache: Cache | None = None,
                  engine: Engine | None = None, today: date | None = None) -> View:
    """GET /api/intelligence/forecast (and the page's chart): forecast:{uid}, stale-while-revalidate.

    One cache entry per user whatever `days` is (the workers invalidate exactly forecast:{uid}); each request
    slices it. A stale entry is served at once with `stale: true` while one background refresh runs.
    """
    if not 1 <= days <= MAX_HORIZON_DAYS:
        raise ValueError(f"days must be within 1..{MAX_HORIZON_DAYS}, got {days}")
    cache = cache or get_cache()

    def loader() -> dict[str, Any]:
        return load_forecast(engine or api_engine(), tenant_id, user_id)

    result = cache.get_or_load_result(forecast_key(user_id), loader, FORECAST_TTL_SECONDS)
    _check_tenant(result.value, tenant_id, user_id)
    return _forecast_of(result, days, today or utcnow().date())


def _forecast_of(result: CacheResult, days: int, today: date) -> View:
    doc = _forecast_document(result.value, days, today, result.stale)
    return View(doc, result.value["source"], result.status, result.stored_at, result.raw)
