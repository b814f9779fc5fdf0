"""Which requests the freshness guard looks at (app/entrypoints/freshness_guard.py), with the lag given."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.entrypoints.freshness_guard import FreshnessGuardMiddleware, PipelineBehind


class _Lag:
    def __init__(self, lag_ms: float | None) -> None:
        self.value = lag_ms

    def lag_ms(self) -> float | None:
        return self.value


def _scope(method: str, token_info: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/api/miners",
            "extensions": {"connexion_context": {"token_info": token_info},
                           "connexion_routing": {"operation_id": "create_miner"}}}


def _call(guard: FreshnessGuardMiddleware, scope: dict[str, Any]) -> bool:
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    guard.app = app
    asyncio.run(guard(scope, None, None))  # type: ignore[arg-type]
    return bool(reached)


USER = {"sub": "u-1", "tenant_id": "t-1", "scope": ["miners:write"]}


def test_an_authenticated_write_is_refused_when_the_lag_asks_for_all():
    guard = FreshnessGuardMiddleware(None, reader=_Lag(2500.0), threshold_ms=1000,  # type: ignore[arg-type]
                                     chance=lambda: 0.999)
    with pytest.raises(PipelineBehind) as refused:
        _call(guard, _scope("POST", USER))
    problem = refused.value
    assert problem.status == 503 and problem.type == "urn:hashinsight:problem:pipeline-behind"
    assert problem.headers == {"Retry-After": "3"} and "2.5 s" in problem.detail


@pytest.mark.parametrize(("method", "token_info", "lag", "threshold"), [
    ("GET", USER, 60_000.0, 1000),        # reads are never refused
    ("POST", {}, 60_000.0, 1000),         # a public operation (login)
    ("POST", USER, None, 1000),           # no lag known: Redis silent, or the bus calm
    ("PATCH", USER, 900.0, 1000),         # under the threshold
    ("PUT", USER, 60_000.0, 0),           # the guard off
])
def test_what_passes(method, token_info, lag, threshold):
    guard = FreshnessGuardMiddleware(None, reader=_Lag(lag), threshold_ms=threshold,  # type: ignore[arg-type]
                                     chance=lambda: 0.0)
    assert _call(guard, _scope(method, token_info))


def test_between_the_threshold_and_twice_it_a_share_is_refused():
    draws = iter([0.1, 0.6, 0.4, 0.9])
    guard = FreshnessGuardMiddleware(None, reader=_Lag(1500.0), threshold_ms=1000,  # type: ignore[arg-type]
                                     chance=lambda: next(draws))
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(_call(guard, _scope("POST", USER)))
        except PipelineBehind:
            outcomes.append(False)
    assert outcomes == [False, True, False, True]  # refused when the draw is under the share (0.5)
