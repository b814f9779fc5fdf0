"""Traces from the HTTP request to the consumer, and the consumers' metrics, on the real stack.

The request goes through the real app (Flask instrumentation), the event through the real connector (its
HeaderFrom SMT moves event_outbox.traceparent into a `traceparent` record header), Kafka and the consumer loop.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy import text
from starlette.testclient import TestClient

from app.adapters import tracing
from app.adapters.db import api_engine
from app.adapters.rate_limit import RateLimiter
from app.adapters.tokens import encode_token
from app.config import get_settings
from app.entrypoints.app import create_app
from app.service_layer.unit_of_work import OutboxEvent, UnitOfWork
from generated.events import EVENT_MODELS
from tests.integration.pipeline.harness import Fleet, inbox_count, private, run_until, start_group_at_end
from tools import db
from tools.redrive import redrive
from workers.consumer_loop import ConsumerLoop
from workers.portfolio_consumer import PortfolioHandler

ROOT = Path(__file__).resolve().parents[3]
settings = get_settings()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("pytest").add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _tail(topic: str) -> Consumer:
    """A consumer that reads `topic` from its current end on."""
    group = f"probe-{uuid.uuid4().hex[:8]}"
    start_group_at_end(group, [topic])
    c = Consumer({"bootstrap.servers": settings.kafka_brokers, "group.id": group, "enable.auto.commit": False})
    c.subscribe([topic])
    return c


def _record_of(consumer: Consumer, user_id: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=100, timeout=0.5):
            if not msg.error() and msg.key() == user_id.encode():
                return msg
    raise AssertionError(f"no record of {user_id} within {timeout:.0f}s")


def _consumer_spans(exporter: InMemorySpanExporter, consumer: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("hashinsight.consumer") == consumer]


def _write_event(fleet: Fleet, traceparent: str) -> str:
    """A miner.added event written like the API writes it, with a traceparent of our choosing."""
    miner_id = str(uuid.uuid4())
    payload = EVENT_MODELS["miner.added"].model_validate(
        {"miner_id": miner_id, "model_id": "antminer-s21", "status": "active", "label": "traced",
         "serial_number": None, "hashrate_ths": 200.0, "power_w": 3500})
    with UnitOfWork(api_engine(), fleet.tenant_id) as uow:
        uow.conn.execute(text("INSERT INTO miners (id, tenant_id, model_id, label, status) "
                              "VALUES (:id, :t, 'antminer-s21', 'traced', 'active')"),
                         {"id": miner_id, "t": fleet.tenant_id})
        uow.conn.execute(text("INSERT INTO user_miners (tenant_id, user_id, miner_id) VALUES (:t, :u, :id)"),
                         {"t": fleet.tenant_id, "u": fleet.user_id, "id": miner_id})
        event = uow.emit(OutboxEvent("miner.added", fleet.user_id, payload, entity_id=miner_id,
                                     trace_id=traceparent[3:35], traceparent=traceparent))
        uow.commit()
    return event.id


def test_a_request_traceparent_reaches_the_kafka_header_and_the_consumers_span(fleet, spans):
    handler = private(PortfolioHandler, "trace")
    incoming, trace_id, caller_span = _traceparent()
    app = create_app(rate_limiter=RateLimiter(enabled=False))
    token = encode_token(fleet.user_id, fleet.tenant_id, ["miners:write"])
    tail = _tail("events.miner")
    try:
        with TestClient(app) as client:
            r = client.post("/api/miners", json={"model_id": "antminer-s21", "label": "traced"},
                            headers={"Authorization": f"Bearer {token}", "traceparent": incoming})
        assert r.status_code == 201, r.text
        server = [s for s in spans.get_finished_spans() if s.name == "POST /api/miners"
                  and s.context.trace_id == int(trace_id, 16)]
        assert server and server[0].parent.span_id == int(caller_span, 16), "the request span continues the header"

        with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, trace_id, traceparent FROM event_outbox WHERE tenant_id = %s", (fleet.tenant_id,))
            ((event_id, stored_trace_id, stored),) = cur.fetchall()
        assert stored_trace_id == trace_id
        assert stored == f"00-{trace_id}-{server[0].context.span_id:016x}-01"

        record = _record_of(tail, fleet.user_id)
    finally:
        tail.close()
    header = tracing.header_value(record.headers())
    assert header == stored, f"the connector put {header!r} in the traceparent header"

    loop = ConsumerLoop(handler)
    run_until(loop, lambda: loop.stats.applied >= 1)
    (span,) = [s for s in _consumer_spans(spans, handler.name) if s.attributes["hashinsight.event.id"] == event_id]
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.parent.span_id == server[0].context.span_id
    assert span.name == f"{handler.name} process miner.added"
    assert span.attributes["hashinsight.outcome"] == "applied"
    assert span.attributes["messaging.destination.name"] == "events.miner"


def test_events_applied_together_link_to_each_others_traces(fleet, spans):
    handler = private(PortfolioHandler, "links")
    first, first_trace, _ = _traceparent()
    second, second_trace, _ = _traceparent()
    ids = [_write_event(fleet, first), _write_event(fleet, second)]
    loop = ConsumerLoop(handler)
    run_until(loop, lambda: inbox_count(handler.name, ids) == 2)
    assert loop.stats.recalculations == 1, "both events were applied in one recalculation"
    by_event = {s.attributes["hashinsight.event.id"]: s for s in _consumer_spans(spans, handler.name)}
    a, b = by_event[ids[0]], by_event[ids[1]]
    assert (f"{a.context.trace_id:032x}", f"{b.context.trace_id:032x}") == (first_trace, second_trace)
    assert a.attributes["hashinsight.coalesced"] == b.attributes["hashinsight.coalesced"] == 2
    assert [f"{link.context.trace_id:032x}" for link in a.links] == [second_trace]
    assert [f"{link.context.trace_id:032x}" for link in b.links] == [first_trace]


class _Broken(PortfolioHandler):
    def apply(self, uow, events):
        raise RuntimeError("bug in the handler")


def test_a_dead_letter_and_its_redrive_stay_in_the_request_trace(fleet, spans):
    broken = private(_Broken, "trace-redrive")
    traceparent, trace_id, _ = _traceparent()
    event_id = _write_event(fleet, traceparent)
    loop = ConsumerLoop(broken, backoff_base=0.01)
    run_until(loop, lambda: loop.stats.dead_lettered >= 1)
    dead = [s for s in _consumer_spans(spans, broken.name) if s.attributes["hashinsight.outcome"] == "dead_lettered"]
    assert [f"{s.context.trace_id:032x}" for s in dead] == [trace_id]
    assert dead[0].status.description and "bug in the handler" in dead[0].status.description

    moved = redrive(broken.name, dry_run=False, group=f"test.redrive.{uuid.uuid4().hex[:8]}")
    assert moved["redriven to events.miner"] == 1
    (redrive_span,) = [s for s in spans.get_finished_spans() if s.name == "redrive events.miner"
                       and s.attributes.get("hashinsight.event.id") == event_id]
    assert f"{redrive_span.context.trace_id:032x}" == trace_id

    fixed = PortfolioHandler()
    fixed.name = broken.name
    loop = ConsumerLoop(fixed)
    run_until(loop, lambda: inbox_count(fixed.name, [event_id]) == 1)
    applied = [s for s in _consumer_spans(spans, fixed.name) if s.attributes["hashinsight.outcome"] == "applied"]
    assert [f"{s.context.trace_id:032x}" for s in applied] == [trace_id]
    assert applied[0].parent.span_id == redrive_span.context.span_id


def test_the_loop_counts_what_it_applied_and_how_long_after_the_commit(fleet):
    handler = private(PortfolioHandler, "metrics")
    labels = {"consumer": handler.name}
    _write_event(fleet, _traceparent()[0])
    loop = ConsumerLoop(handler)
    run_until(loop, lambda: loop.stats.applied >= 1)
    assert REGISTRY.get_sample_value("hashinsight_consumer_records_total", {**labels, "outcome": "applied"}) == 1
    assert REGISTRY.get_sample_value("hashinsight_event_commit_to_applied_seconds_count", labels) == 1
    latency = REGISTRY.get_sample_value("hashinsight_event_commit_to_applied_seconds_sum", labels)
    assert 0 < latency < 30
    assert REGISTRY.get_sample_value("hashinsight_consumer_batches_total", labels) >= 1
    assert REGISTRY.get_sample_value("hashinsight_lock_wait_seconds_count", labels) >= 1


def _sample(body: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in body.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return None


def test_a_worker_process_serves_its_metrics_on_base_plus_slot_and_logs_its_spans(fleet, tmp_path):
    """The real entry point (workers.consumer_loop.main) in its own process, as supervisord starts it."""
    handler = private(PortfolioHandler, "worker")
    base = int(os.environ.get("WORKER_METRICS_PORT", "9100")) + 40
    log_path = tmp_path / "worker.log"
    script = ("import sys; from workers.consumer_loop import main; from workers.portfolio_consumer import "
              "PortfolioHandler; h = PortfolioHandler(); h.name = sys.argv[1]; main(h)")
    env = {**os.environ, "HASHINSIGHT_METRICS_PORT": str(base), "HASHINSIGHT_WORKER_SLOT": "2",
           "HASHINSIGHT_SERVICE": "worker-test-2", "OTEL_TRACES_EXPORTER": "", "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", script, handler.name], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        traceparent, trace_id, _ = _traceparent()
        event_id = _write_event(fleet, traceparent)
        url = f"http://127.0.0.1:{base + 2}/metrics"
        deadline, body, applied = time.monotonic() + 60, "", None
        while time.monotonic() < deadline and not applied:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                body = httpx.get(url, timeout=2).text
            except httpx.TransportError:
                body = ""
            applied = _sample(body, "hashinsight_consumer_records_total", consumer=handler.name, outcome="applied")
            time.sleep(0.3)
        assert applied == 1, body[-3000:] or log_path.read_text()[-3000:]
        assert _sample(body, "hashinsight_event_commit_to_applied_seconds_count", consumer=handler.name) == 1
        assert _sample(body, "hashinsight_consumer_batches_total", consumer=handler.name) >= 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and trace_id not in log_path.read_text():
            time.sleep(0.3)  # spans are exported in batches, once a second
        lines = [line for line in log_path.read_text().splitlines() if f"trace={trace_id}" in line]
        assert lines and f"hashinsight.event.id={event_id}" in lines[0], log_path.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)
