"""The access log's line and its batching (app/entrypoints/access_log.py), on a pipe."""

from __future__ import annotations

import asyncio
import os

from app.entrypoints.access_log import AccessLog, line

SCOPE = {"method": "GET", "raw_path": b"/api/portfolio", "query_string": b"", "http_version": "1.1",
         "client": ("10.0.0.7", 5000), "path": "/api/portfolio"}


def _read(fd: int) -> str:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 16).decode()
    except BlockingIOError:
        return ""


def test_a_line_names_time_client_request_status_duration_operation_and_request_id():
    text = line(SCOPE, 200, 0.01234, "get_portfolio", "rid-1", now=1_796_000_000.25)
    assert text == ('2026-11-30T00:53:20.250Z 10.0.0.7 "GET /api/portfolio HTTP/1.1" 200 12.3ms get_portfolio '
                    'rid-1\n')


def test_the_target_stays_encoded_so_it_cannot_break_the_line():
    scope = {**SCOPE, "raw_path": b"/api/x%0D%0Ay", "path": "/api/x\r\ny", "query_string": b"a=%0A"}
    text = line(scope, 404, 0.001, "unmatched", "", now=0)
    assert text.count("\n") == 1 and '"GET /api/x%0D%0Ay?a=%0A HTTP/1.1" 404' in text and text.endswith(" -\n")


def test_lines_leave_in_one_write_when_the_batch_is_full():
    r, w = os.pipe()
    log = AccessLog(fd=w, max_lines=3, flush_seconds=60)

    async def run() -> tuple[str, str]:
        log.add("a\n")
        log.add("b\n")
        before = _read(r)
        log.add("c\n")
        return before, _read(r)

    assert asyncio.run(run()) == ("", "a\nb\nc\n")


def test_a_partial_batch_leaves_after_the_delay():
    r, w = os.pipe()
    log = AccessLog(fd=w, max_lines=100, flush_seconds=0.05)

    async def run() -> tuple[str, str]:
        log.add("one\n")
        before = _read(r)
        await asyncio.sleep(0.2)
        return before, _read(r)

    assert asyncio.run(run()) == ("", "one\n")


def test_without_an_event_loop_a_line_is_written_at_once():
    r, w = os.pipe()
    AccessLog(fd=w).add("now\n")
    assert _read(r) == "now\n"
