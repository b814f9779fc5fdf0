"""The web's access log: one line per answered request, written in batches.

    2026-12-05T23:20:01.123Z 127.0.0.1 "POST /api/miners HTTP/1.1" 201 12.3ms create_miner 6f1c...e2

(time in UTC, client address, request line as sent, status, time to the end of the answer, the contract's
operation, the request id that X-Request-ID carries and the application's log lines name).

Why not uvicorn's access log: its line has no time, request id or duration, and each one went through a
logging formatter and its own write to the supervisor's pipe; with it on, a cached read cost about a third
more. Here a line is one string appended to a buffer, and the buffer goes out in one write when it holds
MAX_LINES lines, FLUSH_SECONDS after its first line, and when the process exits. A process killed outright loses
at most FLUSH_SECONDS of lines; its requests are still in the metrics Prometheus scraped.

`serve --no-access-log` (HASHINSIGHT_ACCESS_LOG=0) turns it off.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time

ENV = "HASHINSIGHT_ACCESS_LOG"
MAX_LINES = 256
FLUSH_SECONDS = 0.2
MAX_TARGET_CHARS = 2000


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def line(scope: dict, status: int, seconds: float, operation: str, request_id: str, now: float) -> str:
    """One access line. The target is the raw request target (still percent-encoded, as the HTTP parser accepted
    it), so it cannot carry a line break into the log."""
    target = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "backslashreplace")
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    client = scope.get("client")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return (f'{stamp}.{int(now * 1000) % 1000:03d}Z {client[0] if client else "-"} '
            f'"{scope.get("method", "-")} {target[:MAX_TARGET_CHARS].decode("latin-1")} '
            f'HTTP/{scope.get("http_version", "1.1")}" {status} {seconds * 1000:.1f}ms {operation} '
            f'{request_id or "-"}\n')


class AccessLog:
    def __init__(self, fd: int = 2, max_lines: int = MAX_LINES, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._fd = fd
        self._max_lines = max_lines
        self._flush_seconds = flush_seconds
        self._lines: list[str] = []
        atexit.register(self.flush)

    def add(self, text: str) -> None:
        """Called on the event loop (the one thread that adds lines), so the buffer needs no lock."""
        self._lines.append(text)
        if len(self._lines) >= self._max_lines:
            self.flush()
        elif len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_later(self._flush_seconds, self.flush)
            except RuntimeError:  # no loop (a test calling directly): write at once
                self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        data = memoryview("".join(lines).encode("utf-8", "backslashreplace"))
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError:  # the log's reader is gone (the supervisor stopping us): nothing left to tell
            pass
