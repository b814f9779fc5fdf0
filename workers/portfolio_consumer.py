"""Portfolio worker: miner.* events -> recalc_user_portfolio(user_id) -> invalidate the user's page caches.

It reads every events.* topic because it is also the consumer that marks outbox rows processed (see
migrations/0007); it acts only on miner events.
"""

from __future__ import annotations

from app.adapters.cache import analytics_key, get_cache, portfolio_key
from app.adapters.envelope_codec import Envelope
from app.adapters.redis_lock import recalc_lock_key
from app.service_layer.portfolio import recalc_user_portfolio
from app.service_layer.unit_of_work import UnitOfWork
from workers.consumer_loop import main


class PortfolioHandler:
    name = "hashinsight.portfolio"
    topics = ("events.miner", "events.treasury", "events.ops", "events.crm")
    marks_outbox = True

    def accepts(self, kind: str) -> bool:
        return kind.startswith("miner.")

    def lock_key(self, user_id: str) -> str:
        return recalc_lock_key(user_id)

    def apply(self, uow: UnitOfWork, user_id: str, events: list[Envelope]) -> None:
        recalc_user_portfolio(uow, user_id, last_event_id=events[-1].id)

    def after_commit(self, tenant_id: str, user_id: str, events: list[Envelope]) -> None:
        get_cache().invalidate(portfolio_key(user_id), analytics_key(user_id))


if __name__ == "__main__":
    main(PortfolioHandler())
