"""The freshness guard: writes refused while the bus is behind (policy: app/domain/freshness.py).

An ASGI layer after security (it needs to know the request is an authenticated write) and before admission (a
refused write spends no rate-limit token and no Redis round trip): reads pass, public operations pass, and an
authenticated write is refused with the share `shed_share` gives for the page consumer's lag, as a 503
problem+json `urn:hashinsight:problem:pipeline-behind` with Retry-After. Nothing of a refused write was read or
stored, so retrying it (with the same Idempotency-Key) is safe.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.adapters import metrics
from app.adapters.pipeline_lag import LagReader
from app.config import get_settings
from app.domain.freshness import retry_after_s, shed_share
from app.entrypoints.http.principal import scope_token_info
from app.entrypoints.http.problems import TYPE_PIPELINE_BEHIND, ApiProblem
from app.entrypoints.middleware import READ_METHODS


class PipelineBehind(ApiProblem):
    def __init__(self, lag_ms: float) -> None:
        wait = retry_after_s(lag_ms)
        super().__init__(
            503, f"Changes are taking {lag_ms / 1000:.1f} s to reach the page, so this write was not taken; retry "
                 f"in {wait} s (a write retried with the same Idempotency-Key is applied at most once)",
            type=TYPE_PIPELINE_BEHIND, headers={"Retry-After": str(wait)},
        )


class FreshnessGuardMiddleware:
    def __init__(self, app: ASGIApp, reader: LagReader | None = None, threshold_ms: float | None = None,
                 chance: Callable[[], float] = random.random) -> None:
        self.app = app
        self.reader = reader or LagReader()
        self.threshold_ms = get_settings().shed_writes_lag_ms if threshold_ms is None else threshold_ms
        self._chance = chance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.threshold_ms > 0 and scope["type"] == "http" and scope["method"] not in READ_METHODS
                and scope_token_info(scope) is not None):
            lag = self.reader.lag_ms()
            share = shed_share(lag, self.threshold_ms)
            if share and lag is not None and self._chance() < share:
                routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
                metrics.WRITES_SHED.labels(routing.get("operation_id") or "-").inc()
                raise PipelineBehind(lag)
        await self.app(scope, receive, send)
