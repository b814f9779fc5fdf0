"""Plan changes to every web process: Redis pub/sub on one channel, `hashinsight:plan-changed`.

Each web process caches users' plans in memory (service_layer/users.py). When a plan changes, the portfolio
consumer (on `crm.subscription_changed`) and the API process that served the change both PUBLISH
"<tenant_id> <user_id>"; every web process runs one listener thread that drops that user's cached plan, so
the next request reads the new plan from PostgreSQL. Delivery takes milliseconds.

Pub/sub is fire-and-forget: a message sent while a listener is disconnected is lost. So a listener that
(re)subscribes drops every cached plan first, and the plan cache keeps its TTL as the last resort.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import redis

from app.adapters.redis_client import REDIS_DOWN_ERRORS, get_redis, make_redis
from app.config import get_settings

log = logging.getLogger(__name__)

CHANNEL = "hashinsight:plan-changed"


def message(tenant_id: str, user_id: str) -> str:
    return f"{tenant_id} {user_id}"


def parse(data: str) -> tuple[str, str] | None:
    tenant_id, sep, user_id = data.partition(" ")
    return (tenant_id, user_id) if sep and tenant_id and user_id else None


def publish(users: Iterable[tuple[str, str]], client: redis.Redis | None = None) -> int:
    """Announce plan changes of (tenant, user) pairs, pipelined; returns how many were sent.
    Raises the Redis error when Redis is down (the consumer retries; the API logs it)."""
    pairs = list(users)
    if not pairs:
        return 0
    pipe = (client or get_redis()).pipeline(transaction=False)
    for tenant_id, user_id in pairs:
        pipe.publish(CHANNEL, message(tenant_id, user_id))
    pipe.execute()
    return len(pairs)


class PlanListener:
    """A daemon thread: SUBSCRIBE, call `on_change(tenant, user)` per message, `on_resync()` on each (re)subscribe."""

    def __init__(self, on_change: Callable[[str, str], None], on_resync: Callable[[], None],
                 url: str | None = None) -> None:
        self._on_change = on_change
        self._on_resync = on_resync
        self._url = url or get_settings().redis_url
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plan-listener", daemon=True)

    def start(self) -> PlanListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            # Its own client: a subscribed connection cannot serve other commands, and the blocking read
            # needs a longer socket timeout than the shared client's.
            client = make_redis(self._url, socket_timeout=5.0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                self._on_resync()
                self.subscribed.set()
                delay = 0.1
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        pair = parse(str(msg["data"]))
                        if pair:
                            self._on_change(*pair)
            except (*REDIS_DOWN_ERRORS, redis.RedisError) as exc:
                self.subscribed.clear()
                log.warning("plan listener: %s; resubscribing in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except redis.RedisError:
                    pass
