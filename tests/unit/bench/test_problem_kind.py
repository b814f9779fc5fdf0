"""The bench names which guard refused a write, from the problem's type."""

from __future__ import annotations

import json

from tools.bench.openloop import problem_kind
from tools.loadgen import Response


def _response(status: int, body: object) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, {}, raw)


def test_a_problem_type_is_named_by_its_last_part_and_anything_else_by_its_status():
    assert problem_kind(_response(503, {"type": "urn:hashinsight:problem:pipeline-behind"})) == "pipeline-behind"
    assert problem_kind(_response(503, {"type": "urn:hashinsight:problem:overloaded"})) == "overloaded"
    assert problem_kind(_response(429, {"type": "about:blank", "status": 429})) == "http-429"
    assert problem_kind(_response(503, b"<html>busy</html>")) == "http-503"
