"""A refused request (429, 503) is asked again after the answer's Retry-After, by the bench and by the chaos run."""

from __future__ import annotations

from tools.loadgen import Response


def _refusal(headers: dict[str, str]) -> Response:
    return Response(503, headers, b'{"title": "Service Unavailable"}')


def test_the_wait_is_the_answers_retry_after_in_seconds() -> None:
    assert _refusal({"retry-after": "1"}).retry_after() == 1.0
    assert _refusal({"retry-after": "7"}).retry_after() == 7.0


def test_without_a_usable_retry_after_the_wait_is_the_default() -> None:
    assert _refusal({}).retry_after() == 1.0
    assert _refusal({}).retry_after(default=0.5) == 0.5
    assert _refusal({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}).retry_after() == 1.0


def test_the_wait_is_bounded() -> None:
    assert _refusal({"retry-after": "-3"}).retry_after() == 0.0
    assert _refusal({"retry-after": "86400"}).retry_after() == 60.0
