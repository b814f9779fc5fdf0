"""Intel worker: miner.* events -> refresh the user's forecast_daily -> invalidate forecast:{uid}."""

from __future__ import annotations

from app.adapters.cache import forecast_key, get_cache
from app.adapters.envelope_codec import Envelope
from app.service_layer.forecast import refresh_forecast
from app.service_layer.unit_of_work import UnitOfWork
from workers.consumer_loop import main


class IntelHandler:
    name = "hashinsight.intel"
    topics = ("events.miner",)
    marks_outbox = False

    def accepts(self, kind: str) -> bool:
        return kind.startswith("miner.")

    def lock_key(self, user_id: str) -> str:
        return f"lock:forecast:{user_id}"

    def apply(self, uow: UnitOfWork, user_id: str, events: list[Envelope]) -> None:
        refresh_forecast(uow, user_id)

    def after_commit(self, tenant_id: str, user_id: str, events: list[Envelope]) -> None:
        get_cache().invalidate(forecast_key(user_id))


if __name__ == "__main__":
    main(IntelHandler())
