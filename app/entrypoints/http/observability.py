"""Handlers of the `observability` tag: GET /metrics (operationId get_metrics), Prometheus text."""

from __future__ import annotations

from flask import Response

from app.adapters import metrics
from app.service_layer.pipeline_metrics import PipelineCollector


def get_metrics() -> Response:
    body, content_type = metrics.exposition([PipelineCollector()])
    return Response(body, status=200, content_type=content_type, headers={"Cache-Control": "no-store"})
