"""Prometheus metrics of web and workers (prometheus_client): the metric objects and how they are exposed.

Web: uvicorn runs several worker processes, so the web server uses prometheus_client's multiprocess mode:
`python -m app.entrypoints.serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers
start, every process writes its samples there, and GET /metrics (any worker) merges them. Without the
variable (tests, a single process) the default in-process registry is used.

Workers: each consumer process serves its own registry on 127.0.0.1:HASHINSIGHT_METRICS_PORT +
HASHINSIGHT_WORKER_SLOT (supervisord sets both; see infra/stack.sh), `serve_worker_metrics()`.

Labels are bounded on purpose: operation ids, consumer names, outcomes, exception class names; never a user,
tenant, event id or raw path. The metric names and what to alert on are listed in docs/operations.md.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PORT_ENV = "HASHINSIGHT_METRICS_PORT"
WORKER_SLOT_ENV = "HASHINSIGHT_WORKER_SLOT"
# Loopback natively; a container sets 0.0.0.0 so Prometheus in another container can scrape it.
METRICS_ADDR_ENV = "HASHINSIGHT_METRICS_ADDR"

# Seconds: from 5 ms (a cache hit) to a minute (a consumer stalled behind an outage).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# -- web ------------------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "hashinsight_http_requests", "HTTP requests answered, per contract operation (operationId) and status.",
    ["operation", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "hashinsight_http_request_duration_seconds", "Time to answer an HTTP request, per contract operation.",
    ["operation"], buckets=LATENCY_BUCKETS,
)
WRITES_SHED = Counter(
    "hashinsight_writes_shed", "Writes refused (503) because the bus was behind (app/domain/freshness.py).",
    ["operation"],
)
SSE_STREAMS = Gauge(
    "hashinsight_page_streams_open", "Server-sent event streams (GET /analytics/stream) open now.",
    multiprocess_mode="livesum",
)
SSE_MESSAGES = Counter(
    "hashinsight_page_stream_messages", "Page notifications sent down server-sent event streams.",
)

# -- consumers ------------------------------------------------------------------------------------------------

CONSUMER_BATCHES = Counter("hashinsight_consumer_batches", "Batches a consumer processed.", ["consumer"])
CONSUMER_RECORDS = Counter(
    "hashinsight_consumer_records",
    "Records a consumer read, by outcome: applied, duplicate (the inbox had it), skipped (not for this "
    "consumer), dead_lettered.",
    ["consumer", "outcome"],
)
COMMIT_TO_APPLIED = Histogram(
    "hashinsight_event_commit_to_applied_seconds",
    "From the write's commit (event_outbox.created_at) to the consumer's commit of its effect.",
    ["consumer"], buckets=LATENCY_BUCKETS,
)
CONSUMER_RETRIES = Counter(
    "hashinsight_consumer_retries",
    "Retries of a consumer step (what: apply, decode, after-commit, ...; reason: the exception class).",
    ["consumer", "what", "reason"],
)
LOCK_WAIT = Histogram(
    "hashinsight_lock_wait_seconds", "Time a consumer batch waited for its users' Redis locks.",
    ["consumer"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DEAD_LETTERS = Counter(
    "hashinsight_dead_letters", "Records a consumer sent to events.dlq, by the error's class.",
    ["consumer", "error_class"],
)
PARTITION_LAG = Gauge(
    "hashinsight_consumer_partition_lag",
    "Records behind the end of each assigned partition, from librdkafka's statistics.",
    ["consumer", "topic", "partition"], multiprocess_mode="livemax",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The Prometheus text of this process (or of every web process in multiprocess mode) plus `extra`."""
    directory = multiprocess_dir()
    if directory:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base, path=directory)
    else:
        base = REGISTRY
    body = generate_latest(base)
    collectors = list(extra)
    if collectors:
        # A fresh registry per scrape: the extra collectors read live figures and are not registered globally.
        own = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            own.register(collector)
        body += generate_latest(own)
    return body, CONTENT_TYPE_LATEST


def worker_metrics_port() -> int | None:
    """HASHINSIGHT_METRICS_PORT + HASHINSIGHT_WORKER_SLOT, or None when either is unset (e.g. in tests)."""
    base, slot = os.environ.get(METRICS_PORT_ENV), os.environ.get(WORKER_SLOT_ENV)
    if not base or not slot:
        return None
    return int(base) + int(slot)


def serve_worker_metrics() -> int | None:
    """Serve this process's registry on HASHINSIGHT_METRICS_ADDR (default 127.0.0.1):<worker_metrics_port()>;
    returns the port, None if not set.

    A port that cannot be bound is logged as an error and the worker keeps consuming: metrics must never stop
    the pipeline."""
    port = worker_metrics_port()
    if port is None:
        return None
    addr = os.environ.get(METRICS_ADDR_ENV) or "127.0.0.1"
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        log.error("metrics: cannot serve on %s:%d (%s); this worker runs without /metrics", addr, port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", addr, port)
    return port


def record_kafka_stats(consumer: str, stats_json: str) -> None:
    """librdkafka's stats_cb: per assigned partition, records behind the high watermark (consumer_lag)."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return
    for topic, t in (stats.get("topics") or {}).items():
        for partition, p in (t.get("partitions") or {}).items():
            if partition == "-1" or p.get("fetch_state") in (None, "none", "stopped"):
                continue
            lag = p.get("consumer_lag", -1)  # high watermark - max(position, committed); -1 while unknown
            if lag is not None and lag >= 0:
                PARTITION_LAG.labels(consumer, topic, partition).set(lag)
