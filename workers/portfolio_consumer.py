"""Portfolio worker: miner.* events -> recalculate the users' portfolios -> write their page caches through (the
new portfolio document, app/adapters/cache.py) and notify their open pages (page:{user_id}); market.* -> the
same for every user of every tenant (workers/fanout.py), invalidating rather than writing 10,000 documents;
crm.* -> every web process drops the user's cached plan (app/adapters/plan_events.py).

It reads every events.* topic because it is also the consumer that marks outbox rows processed (see
migrations/0007); it acts on miner, market and crm events.
"""

from __future__ import annotations

from app.adapters import plan_events
from app.adapters.cache import Fresh, analytics_key, get_cache, portfolio_key
from app.adapters.page_events import invalidate_and_notify
from app.adapters.redis_lock import recalc_lock_key
from app.safe_defaults import require_safe_settings
from app.service_layer import read_models
from app.service_layer.portfolio import recalc_portfolios, recalc_portfolios_written
from app.service_layer.unit_of_work import UnitOfWork
from workers.consumer_loop import UserEvents, main
from workers.fanout import Applied, FanOut, lock_tenant
from workers.telemetry import committed_at

ACCEPTED = ("miner.", "market.", "crm.")


class PortfolioHandler:
    name = "hashinsight.portfolio"
    topics = ("events.miner", "events.treasury", "events.ops", "events.crm", "events.market")
    marks_outbox = True
    batch_window_ms = 0  # on the commit-to-page path: a batch takes what has arrived and goes
    reports_lag = True  # its lag is the page's: the web's freshness guard reads it (app/domain/freshness.py)

    def __init__(self) -> None:
        self.fanout = FanOut("portfolio", lambda uow, users: recalc_portfolios(uow, users))

    def accepts(self, kind: str) -> bool:
        return kind.startswith(ACCEPTED)

    def lock_key(self, user_id: str) -> str:
        return recalc_lock_key(user_id)

    def apply(self, uow: UnitOfWork, events: UserEvents) -> Applied:
        last_miner_event = {user: ids[-1] for user, evs in events.items()
                            if (ids := [e.id for e in evs if e.kind.startswith("miner.")])}
        market = any(e.kind.startswith("market.") for evs in events.values() for e in evs)
        fresh: dict[str, Fresh] = {}
        if last_miner_event:
            lock_tenant(uow.conn, "portfolio", uow.tenant_id, exclusive=False)
            users = list(last_miner_event)
            # Read before the fleets are: a later writer's bump of a generation turns our write into a drop.
            gens = None if market else get_cache().generations([portfolio_key(u) for u in users])
            written = recalc_portfolios_written(uow, users, last_miner_event)
            for user, w in written.items() if gens is not None else ():
                key = portfolio_key(user)
                fresh[key] = Fresh(read_models.portfolio_entry(uow.tenant_id, user, w),
                                   read_models.PORTFOLIO_TTL_SECONDS, gens[key])
        return Applied(self.fanout.run(uow) if market else {}, fresh)

    def after_commit(self, tenant_id: str, events: UserEvents, applied: Applied | None) -> None:
        recalculated = {u for u, evs in events.items() if any(e.kind.startswith(("miner.", "market.")) for e in evs)}
        # A plan change changes the page (its plan panel), not the portfolio.
        plan_only = {u for u, evs in events.items()
                     if u not in recalculated and any(e.kind.startswith("crm.") for e in evs)}
        changed = {u: evs for u, evs in events.items() if u in recalculated or u in plan_only}
        market = [e for evs in events.values() for e in evs if e.kind.startswith("market.")]

        def keys_of(user: str) -> list[str]:  # also for the users of a market fan-out
            return [analytics_key(user)] if user in plan_only else [portfolio_key(user), analytics_key(user)]

        invalidate_and_notify(tenant_id, self.name, changed, keys_of,
                              committed_at(), applied.fanned_out if applied else None, market,
                              fresh=applied.fresh if applied else None)
        plan_changes = [(tenant_id, u) for u, evs in events.items() if any(e.kind.startswith("crm.") for e in evs)]
        plan_events.publish(plan_changes)


if __name__ == "__main__":
    require_safe_settings("worker-portfolio")
    main(PortfolioHandler())
