"""OpenTelemetry tracing for web, workers and tools: one tracer provider per process, W3C `traceparent` in and out.

    from app.adapters import tracing
    tracing.configure("web")                      # once per process; later calls return the same provider
    tracing.current_traceparent()                 # '00-<trace id>-<span id>-01' of the active span, or None
    tracing.context_of("00-...")                  # a parent Context for a span continuing that trace

Where spans go (the exporter is chosen once, from the environment):
- `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set: OTLP over HTTP/protobuf to that collector
  (Jaeger, Tempo, the OpenTelemetry Collector), batched;
- `OTEL_TRACES_EXPORTER=none`: nothing is exported (trace context still propagates to the outbox and Kafka);
- otherwise a readable local exporter: one line per span on the `hashinsight.trace` logger, i.e. in the
  service's own log (`.stack/logs/<service>.log`), e.g.
  `span web POST /api/miners trace=4bf9... span=00f0... parent=- 12.3 ms ok`; a batch (at most a second's spans)
  is one log record, its first line after the record's time and level.

Sampling follows the SDK's environment variables (`OTEL_TRACES_SAMPLER`, default parent-based always-on). The
service name is `OTEL_SERVICE_NAME` when set, else the one given to configure() (supervisord passes
HASHINSIGHT_SERVICE, e.g. `worker-portfolio-1`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanContext, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("hashinsight.trace")
TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None


class LogSpanExporter(SpanExporter):
    """One line per finished span, for reading in a service log without any collector."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if spans:
            # One record per batch, a line per span: web finishes a span per request, and a record each would be a
            # write to the log each.
            log.info("%s", "\n".join(describe(span) for span in spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def describe(span: ReadableSpan) -> str:
    ctx = span.context
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else "-"
    took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    status = "error" if span.status.status_code is StatusCode.ERROR else "ok"
    attrs = " ".join(f"{k}={v}" for k, v in sorted((span.attributes or {}).items()) if k.startswith("hashinsight."))
    links = f" links={len(span.links)}" if span.links else ""
    return (f"span {span.name} trace={ctx.trace_id:032x} span={ctx.span_id:016x} parent={parent} "
            f"{took:.1f} ms {status}{links} {attrs}").rstrip()


def _exporter() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if choice == "none":
        return None
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        # Imported only when wanted: the OTLP exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return LogSpanExporter()


def configure(service_name: str) -> TracerProvider:
    """Install this process's tracer provider (idempotent: the first call wins, later ones return it)."""
    global _provider
    with _lock:
        if _provider is None:
            name = os.environ.get("OTEL_SERVICE_NAME") or service_name
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            exporter = _exporter()
            if exporter is not None:
                provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
            trace.set_tracer_provider(provider)
            _provider = provider
        return _provider


_tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """The project's tracer from the current global provider. Kept while that provider stays: the SDK builds a
    new Tracer and instrumentation scope on every get_tracer(), a cost paid per request and per event."""
    global _tracer
    provider = trace.get_tracer_provider()
    cached = _tracer
    if cached is None or cached[0] is not provider:
        cached = _tracer = (provider, provider.get_tracer("hashinsight"))
    return cached[1]


def traceparent_of(span_context: SpanContext) -> str | None:
    if not span_context.is_valid:
        return None
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, or None when no valid span is active."""
    return traceparent_of(trace.get_current_span().get_span_context())


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def context_of(traceparent: str | None) -> otel_context.Context | None:
    """A parent context continuing `traceparent`; None when it is missing or malformed (a new trace starts)."""
    span_context = span_context_of(traceparent)
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


def span_context_of(traceparent: str | None) -> SpanContext | None:
    if not traceparent:
        return None
    ctx = _propagator.extract({TRACEPARENT: traceparent})
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


def links_to(traceparents: Iterable[str | None], limit: int = 32) -> list[Link]:
    """Links to the given traces (deduplicated, at most `limit`): how a span says it served several requests."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for tp in traceparents:
        sc = span_context_of(tp)
        if sc is None or (sc.trace_id, sc.span_id) in seen:
            continue
        seen.add((sc.trace_id, sc.span_id))
        links.append(Link(sc))
        if len(links) >= limit:
            break
    return links


def header_value(headers: Sequence[tuple[str, bytes | str | None]] | None, name: str = TRACEPARENT) -> str | None:
    """A Kafka record header as text (the last one of that name wins), or None."""
    value = None
    for key, raw in headers or ():
        if key == name and raw is not None:
            value = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return value or None
