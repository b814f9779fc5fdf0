"""Commit-to-page latency of the whole system (`make bench`).

Against the running system (web, workers, connector), for each write:
  POST /api/miners -> 201 (the transaction has committed)           t0
  the record appears on events.miner (a probe consumer sees it)     t_kafka
  GET /api/portfolio shows the new miner (polled every --poll ms)   t_page
and reports, per run and over all runs, median / p95 / max of
  capture = t_kafka - t0   (Debezium: WAL -> Kafka; the baseline of this run)
  page    = t_page - t0    (the product's figure: write committed -> page shows it; target P95 <= 3 s)
plus the ratio page / capture, so runs on a noisy machine can be compared by their shape, not their seconds.
The bench user is on the enterprise plan so the rate limiter does not throttle the polling.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests
from confluent_kafka import Consumer, TopicPartition
from tqdm import tqdm

from app.adapters.envelope_codec import EnvelopeCodec, EnvelopeError
from app.adapters.tokens import encode_token
from app.config import get_settings
from tools import db

MODELS = ["antminer-s21", "antminer-s19-pro", "whatsminer-m50s", "avalon-a1466"]


@dataclass
class Sample:
    capture_s: float
    page_s: float


@dataclass
class KafkaProbe:
    """Watches events.miner from its end and notes when each entity id arrives."""

    seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        settings = get_settings()
        self._codec = EnvelopeCodec(settings.schema_registry_url)
        self._consumer = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": f"bench-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        meta = self._consumer.list_topics("events.miner", timeout=10).topics["events.miner"]
        ends = []
        for p in meta.partitions:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition("events.miner", p), timeout=10)
            ends.append(TopicPartition("events.miner", p, high))
        self._consumer.assign(ends)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            for msg in [first, *self._consumer.consume(num_messages=100, timeout=0)]:
                if msg.error():
                    continue
                arrived = time.perf_counter()
                try:
                    env = self._codec.decode(msg.topic(), msg.value())
                except EnvelopeError:
                    continue
                if env.entity_id:
                    self.seen[env.entity_id] = arrived

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def _bench_user() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    tenant, user = f"bench-{suffix}", f"bench-user-{suffix}"
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, tenant_id, display_name) VALUES (%s, %s, 'benchmark')", (user, tenant))
        cur.execute(
            """INSERT INTO user_subscriptions (tenant_id, user_id, plan, requests_per_minute, burst)
               SELECT %s, %s, plan, requests_per_minute, burst FROM subscription_plans WHERE plan = 'enterprise'""",
            (tenant, user),
        )
    return tenant, user


def _miners_total(session: requests.Session, base: str) -> int:
    resp = session.get(f"{base}/api/portfolio", timeout=10)
    resp.raise_for_status()
    return resp.json()["miners_total"]


def run_once(base: str, writes: int, poll_s: float, timeout_s: float) -> list[Sample]:
    tenant, user = _bench_user()
    session = requests.Session()
    token = encode_token(user, tenant, ["miners:write", "portfolio:read"], ttl_seconds=3600)
    session.headers["Authorization"] = f"Bearer {token}"
    total = _miners_total(session, base)
    probe = KafkaProbe()
    probe.start()
    samples = []
    try:
        for i in tqdm(range(writes), desc="writes", unit="write", file=sys.stderr, leave=False):
            resp = session.post(f"{base}/api/miners", json={"model_id": MODELS[i % len(MODELS)],
                                                             "label": f"bench {i}"}, timeout=10)
            t0 = time.perf_counter()
            if resp.status_code != 201:
                raise SystemExit(f"bench: POST /api/miners answered {resp.status_code}: {resp.text[:300]}")
            miner_id = resp.json()["id"]
            total += 1
            while _miners_total(session, base) < total:
                if time.perf_counter() - t0 > timeout_s:
                    raise SystemExit(f"bench: miner {miner_id} not on the page after {timeout_s:.0f} s; "
                                     "are the workers running? (make apps-up)")
                time.sleep(poll_s)
            t_page = time.perf_counter()
            deadline = time.perf_counter() + 5
            while miner_id not in probe.seen and time.perf_counter() < deadline:
                time.sleep(0.005)
            t_kafka = probe.seen.get(miner_id, float("nan"))
            samples.append(Sample(capture_s=t_kafka - t0, page_s=t_page - t0))
            time.sleep(0.05)  # one write at a time: latency, not throughput
    finally:
        probe.stop()
    return samples


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarise(label: str, samples: list[Sample]) -> str:
    cap = [s.capture_s * 1000 for s in samples]
    page = [s.page_s * 1000 for s in samples]
    cap_median, page_median = statistics.median(cap), statistics.median(page)
    ratio = page_median / cap_median if cap_median > 0 else float("nan")
    return (
        f"{label:<8} n={len(samples):<4} "
        f"capture ms: median {cap_median:7.1f}  p95 {_pct(cap, .95):7.1f}  max {max(cap):7.1f} | "
        f"page ms: median {page_median:7.1f}  p95 {_pct(page, .95):7.1f}  p99 {_pct(page, .99):7.1f}  "
        f"max {max(page):7.1f} | page/capture {ratio:4.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Commit-to-page latency benchmark.")
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{get_settings().web_port}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writes", type=int, default=30, help="writes per run")
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one write may take to show")
    args = parser.parse_args(argv)
    try:
        requests.get(f"{args.base_url}/api/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"bench: web not reachable at {args.base_url} ({exc}); start it with make dev", file=sys.stderr)
        return 1
    everything: list[Sample] = []
    lines = []
    for run in range(1, args.runs + 1):
        samples = run_once(args.base_url, args.writes, args.poll_ms / 1000, args.timeout)
        everything += samples
        lines.append(summarise(f"run {run}", samples))
        print(lines[-1], flush=True)
    print(summarise("all", everything))
    target_ok = _pct([s.page_s for s in everything], 0.95) <= 3.0
    print(f"target P95 <= 3 s from commit to page: {'met' if target_ok else 'NOT met'}")
    return 0 if target_ok else 2


if __name__ == "__main__":
    sys.exit(main())
