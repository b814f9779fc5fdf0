"""Plant unique secrets through the API, let them flow through the whole system, then search for them everywhere:
a dump of every table (and of the registry's database), every log file under .stack/logs, every Kafka topic
from its beginning, every Redis key. They must be found nowhere; the database holds them only as ciphertext,
which the test opens to prove they were stored at all.
"""

from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path

import httpx
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from app.adapters.tokens import encode_token
from app.config import get_settings
from app.service_layer import secrets
from tests.integration.api.support import REPO, uvicorn_server
from tests.integration.pipeline.harness import private, run_until
from tools import db
from workers.consumer_loop import ConsumerLoop
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler

LOGS = REPO / ".stack" / "logs"
POOL = "stratum+tcp://btc.pool.example:3333"


def _plant(base: str, headers: dict[str, str], planted: dict[str, str]) -> str:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        created = c.post("/api/miners", json={"model_id": "antminer-s21", "label": "planted",
                                              "pool": {"url": POOL, "worker": "w", "password": planted["pool1"]}})
        assert created.status_code == 201, created.text
        miner_id = created.json()["id"]
        patched = c.patch(f"/api/miners/{miner_id}",
                          json={"pool": {"url": POOL, "worker": "w2", "password": planted["pool2"]}})
        assert patched.status_code == 200, patched.text
        creds = c.put("/api/treasury/credentials", json={"exchange": "paper", "api_key": planted["key"],
                                                         "api_secret": planted["secret"]})
        assert creds.status_code == 200, creds.text
        trade = c.post("/api/treasury/execute", json={"side": "buy", "amount_btc": 0.001})
        assert trade.status_code == 201 and trade.json()["signed_with"] == creds.json()["api_key_hint"], trade.text
        # A refused request that carries a secret: the validation error must not echo it (nor log it).
        refused = c.put("/api/treasury/credentials", json={"exchange": "paper", "api_key": planted["refused"] + " x",
                                                           "api_secret": planted["refused"]})
        assert refused.status_code == 400 and planted["refused"] not in refused.text, refused.text
        for resp in (created, patched, creds, trade):
            assert not any(v in resp.text for v in planted.values())
    return miner_id


def _table_dump(url: str) -> bytes:
    out = io.BytesIO()
    with db.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("""SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                          AND n.nspname NOT LIKE 'pg_toast%'""")
        for (table,) in cur.fetchall():
            cur.copy_expert(f"COPY (SELECT * FROM {table}) TO STDOUT", out)
    return out.getvalue()


def _kafka_dump() -> tuple[bytes, int]:
    settings = get_settings()
    topics = AdminClient({"bootstrap.servers": settings.kafka_brokers}).list_topics(timeout=10).topics
    consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"secret-search-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    chunks: list[bytes] = []
    try:
        wanted = {}
        for name, meta in topics.items():
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10, cached=False)
                if high > low:
                    wanted[(name, p)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in wanted])
        left = set(wanted)
        while left:
            msg = consumer.poll(5.0)
            assert msg is not None, f"topics stopped delivering before their end: {sorted(left)[:5]}"
            key = (msg.topic(), msg.partition())
            if msg.error() is None:
                chunks += [msg.key() or b"", msg.value() or b""]
                chunks += [v or b"" for _, v in (msg.headers() or [])]
                if msg.offset() + 1 >= wanted[key]:
                    left.discard(key)
            elif msg.error().code() == msg.error()._PARTITION_EOF:
                left.discard(key)
    finally:
        consumer.close()
    return b"\n".join(chunks), len(topics)


def _redis_dump() -> bytes:
    r = redis.Redis.from_url(get_settings().redis_url)  # raw bytes
    out: list[bytes] = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        out.append(key)
        if kind == "string":
            out.append(r.get(key) or b"")
        elif kind == "hash":
            out += [b for kv in r.hgetall(key).items() for b in kv]
        elif kind == "list":
            out += r.lrange(key, 0, -1)
        elif kind == "set":
            out += list(r.smembers(key))
        elif kind == "zset":
            out += r.zrange(key, 0, -1)
        elif kind == "stream":
            out += [b for _, fields in r.xrange(key) for kv in fields.items() for b in kv]
    return b"\n".join(out)


def _log_files() -> list[Path]:
    return [p for p in LOGS.rglob("*") if p.is_file()]


def test_a_planted_secret_is_found_nowhere_but_in_ciphertext(pipeline, fleet):
    planted = {name: f"PLANTED-{name}-{uuid.uuid4().hex}" for name in ("pool1", "pool2", "key", "secret", "refused")}
    LOGS.mkdir(parents=True, exist_ok=True)
    # The consumers of this test log into .stack/logs too, at DEBUG, so their lines are searched as well.
    consumer_log = logging.FileHandler(LOGS / "test-planted-secrets-consumers.log")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(consumer_log)
    root.setLevel(logging.DEBUG)
    try:
        token = encode_token(fleet.user_id, fleet.tenant_id, "miners:write miners:read treasury:trade")
        portfolio, intel = private(PortfolioHandler, "secrets"), private(IntelHandler, "secrets")
        with uvicorn_server(LOGS, workers=1, env={"LOG_LEVEL": "debug", "RATE_LIMIT_ENABLED": "0"}) as server:
            miner_id = _plant(server.base_url, {"Authorization": f"Bearer {token}"}, planted)
        for handler, events in ((portfolio, 4), (intel, 2)):  # what each reads of the six events
            loop = ConsumerLoop(handler)
            run_until(loop, lambda loop=loop, n=events: loop.stats.records >= n, timeout=60)
    finally:
        root.removeHandler(consumer_log)
        consumer_log.close()
        root.setLevel(old_level)

    admin = db.admin_url()
    places = {"tables": _table_dump(admin), "registry tables": _table_dump(db.with_database(admin, "registry"))}
    places["kafka"], topic_count = _kafka_dump()
    places["redis"] = _redis_dump()
    for path in _log_files():
        places[f"log {path.relative_to(REPO)}"] = path.read_bytes()
    found = [(secret_name, where) for secret_name, value in planted.items() for where, data in places.items()
             if value.encode() in data]
    assert found == [], f"planted secrets found in plain text: {found}"

    # The search looks where the data is: the non-secret miner id is on the bus, in the tables and in the logs.
    assert miner_id.encode() in places["kafka"] and miner_id.encode() in places["tables"]
    assert topic_count >= 7 and any(str(p).endswith("consumers.log") for p in _log_files())
    # ... and the secrets were stored: sealed, and they open.
    with db.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT master_key_id, wrapped_key, nonce, ciphertext FROM miner_pools WHERE miner_id = %s",
                    (miner_id,))
        k, w, n, c = cur.fetchone()
        sealed = secrets.SealedColumns(k, bytes(w), bytes(n), bytes(c))
        assert secrets.unseal_pool_password(fleet.tenant_id, miner_id, sealed) == planted["pool2"]
        cur.execute("""SELECT master_key_id, wrapped_key, nonce, ciphertext FROM exchange_credentials
                        WHERE tenant_id = %s AND user_id = %s""", (fleet.tenant_id, fleet.user_id))
        k, w, n, c = cur.fetchone()
        key = secrets.unseal_exchange_key(fleet.tenant_id, fleet.user_id, "paper",
                                          secrets.SealedColumns(k, bytes(w), bytes(n), bytes(c)))
        assert (key.api_key, key.api_secret) == (planted["key"], planted["secret"])
