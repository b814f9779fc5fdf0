"""The bus's own figures as Prometheus metrics, read when GET /metrics is scraped.

The same probes as GET /api/health (service_layer/health.py: parallel, single flight, each with a short
timeout, the Kafka figures cached for 2 s), turned into gauges; a figure that cannot be read right now is
left out of the scrape rather than reported as zero, and `hashinsight_dependency_up` says which dependency
is down. These are system-wide numbers, so any one web process answers them; the per-process request
metrics come from prometheus_client's multiprocess files (app/adapters/metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.adapters.cache import get_cache
from app.service_layer import health

SCRAPE_BUDGET_SECONDS = 2.0
CONNECT_STATES = ("RUNNING", "PAUSED", "STOPPED", "UNASSIGNED", "RESTARTING", "FAILED")

_runner = health.ProbeRunner(workers=5)


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, documentation, value=value)


class PipelineCollector(Collector):
    """Outbox backlog, consumer lag, DLQ, replication slot, connector and task state, cache lookups."""

    def collect(self) -> Iterator[Metric]:
        results = _runner.run(health.probes(), SCRAPE_BUDGET_SECONDS)
        up = GaugeMetricFamily("hashinsight_dependency_up", "1 when the dependency answered its probe.",
                               labels=["dependency"])
        for name, result in results.items():
            up.add_metric([name], 1.0 if result.ok else 0.0)
        yield up

        pg = results["postgres"].figures
        yield from _gauge("hashinsight_outbox_backlog", "Outbox rows written but not yet through the bus.",
                          pg.get("outbox_backlog"))
        yield from _gauge("hashinsight_outbox_oldest_unprocessed_seconds",
                          "Age of the oldest outbox row not yet through the bus (absent when there is none).",
                          pg.get("outbox_oldest_unprocessed_sec"))
        yield from _gauge("hashinsight_replication_slot_lag_bytes",
                          "WAL bytes the connector's replication slot has not confirmed.",
                          pg.get("replication_slot_lag_bytes"))
        yield from _gauge("hashinsight_forecast_freshness_seconds", "Age of the newest forecast_daily row.",
                          pg.get("forecast_freshness_sec"))

        kafka = results["kafka"].figures
        if "kafka_consumer_lag" in kafka:
            lag = GaugeMetricFamily("hashinsight_consumer_group_lag",
                                    "Records the consumer group has not committed, over all its partitions.",
                                    labels=["group"])
            for group, value in sorted(kafka["kafka_consumer_lag"].items()):
                lag.add_metric([group], value)
            yield lag
        yield from _gauge("hashinsight_dlq_records", "Dead letters retained on events.dlq.", kafka.get("dlq_count"))
        yield from _gauge("hashinsight_dlq_recent_records", "Dead letters that arrived within the last hour.",
                          kafka.get("dlq_recent"))

        yield from self._connector(results["connect"])
        yield from self._cache()

    @staticmethod
    def _connector(result: health.ProbeResult) -> Iterator[Metric]:
        if not result.ok or "connector_state" not in result.figures:
            return
        connector = health.CONNECTOR_NAME
        state = GaugeMetricFamily("hashinsight_connector_state", "1 for the outbox connector's current state.",
                                  labels=["connector", "state"])
        for s in CONNECT_STATES:
            state.add_metric([connector, s], 1.0 if result.figures["connector_state"] == s else 0.0)
        yield state
        tasks = GaugeMetricFamily("hashinsight_connector_task_state", "1 for each connector task's current state.",
                                  labels=["connector", "task", "state"])
        for task in result.figures.get("connector_tasks") or []:
            for s in CONNECT_STATES:
                tasks.add_metric([connector, str(task["id"]), s], 1.0 if task["state"] == s else 0.0)
        yield tasks

    @staticmethod
    def _cache() -> Iterator[Metric]:
        try:
            stats = get_cache().stats()  # counters kept in Redis, shared by every web process
        except Exception:  # noqa: BLE001 - a scrape never fails on a dependency; dependency_up tells
            stats = None
        if stats is None:
            return
        lookups = CounterMetricFamily("hashinsight_cache_lookups", "Cache lookups by result (fresh hit, stale "
                                      "hit served while refreshing, miss).", labels=["result"])
        lookups.add_metric(["hit"], stats.hits)
        lookups.add_metric(["stale"], stats.stale_hits)
        lookups.add_metric(["miss"], stats.misses)
        yield lookups
