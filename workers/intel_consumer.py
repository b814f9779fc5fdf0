"""Intel worker: miner.* and ops.* events -> refresh the users' forecast_daily (maintenance windows count as
downtime) -> invalidate forecast:{uid}, and for ops.* exactly the ops_schedule:{uid}:{yyyymmdd} keys of the
days the window touches, and notify the users' open pages (page:{user_id}); market.* -> refresh every user of
every tenant (workers/fanout.py)."""

from __future__ import annotations

from app.adapters.cache import analytics_key, forecast_key
from app.adapters.page_events import invalidate_and_notify
from app.safe_defaults import require_safe_settings
from app.service_layer.forecast import refresh_forecasts
from app.service_layer.ops import schedule_keys
from app.service_layer.unit_of_work import UnitOfWork
from workers.consumer_loop import UserEvents, main
from workers.fanout import Applied, FanOut, lock_tenant
from workers.telemetry import committed_at

ACCEPTED = ("miner.", "market.", "ops.")


class IntelHandler:
    name = "hashinsight.intel"
    topics = ("events.miner", "events.ops", "events.market")
    marks_outbox = False
    # The forecast is off the commit-to-page path: a batch waits up to 250 ms for more events, so its
    # transaction, locks, forecast upsert and notifications serve many (docs/performance.md, the batch window).
    batch_window_ms = 250

    def __init__(self) -> None:
        self.fanout = FanOut("intel", lambda uow, users: refresh_forecasts(uow, users))

    def accepts(self, kind: str) -> bool:
        return kind.startswith(ACCEPTED)

    def lock_key(self, user_id: str) -> str:
        return f"lock:forecast:{user_id}"

    def apply(self, uow: UnitOfWork, events: UserEvents) -> Applied:
        users = [u for u, evs in events.items() if any(e.kind.startswith(("miner.", "ops.")) for e in evs)]
        market = any(e.kind.startswith("market.") for evs in events.values() for e in evs)
        if users:
            lock_tenant(uow.conn, "intel", uow.tenant_id, exclusive=False)
            refresh_forecasts(uow, users)
        return Applied(self.fanout.run(uow) if market else {})

    def after_commit(self, tenant_id: str, events: UserEvents, applied: Applied | None) -> None:
        def keys_of(user: str) -> list[str]:
            keys = [forecast_key(user)]
            for e in events.get(user, ()):
                if e.kind == "ops.maintenance_scheduled":
                    # The day's schedule, and the page context that lists upcoming windows.
                    keys += [*schedule_keys(user, e.payload.days or [e.payload.day]), analytics_key(user)]
            return keys

        market = [e for evs in events.values() for e in evs if e.kind.startswith("market.")]
        invalidate_and_notify(tenant_id, self.name, events, keys_of, committed_at(),
                              applied.fanned_out if applied else None, market)


if __name__ == "__main__":
    require_safe_settings("worker-intel")
    main(IntelHandler())
