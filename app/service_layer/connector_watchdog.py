"""Keeps the outbox connector running: a FAILED connector or task is restarted through the Connect REST API.

Kafka Connect never restarts a failed task by itself. A task fails when an error exhausts Connect's error
handling, for example the Avro converter meeting a registry that answers 500 for a moment after PostgreSQL
restarted. Restarting the task is safe: it resumes from the last source offset Connect committed, so the record
that failed is read from the replication slot again and re-sent; the consumers' inbox drops any duplicate.

Restarts back off (app/domain/restart_policy.py) so a task that fails for a reason a restart cannot cure does not
spin; every restart is logged with the first line of the task's trace.

One failure a restart cannot cure: "... no longer available on the server", a stored source offset older than
what the replication slot still holds (the offsets topic came from another Kafka cluster, or was restored from an
older copy). The slot keeps every change not yet confirmed, so the watchdog clears the stored offsets and the
connector resumes at the slot's position; nothing committed after that position is lost. This is what
`python -m tools.connect reset` does by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.adapters.kafka_connect import ConnectClient, ConnectError, ConnectorState, failure_reason
from app.domain.restart_policy import RestartBackoff

log = logging.getLogger("hashinsight.connector-watchdog")

# Debezium's failure when the stored offset points at WAL the replication slot has released.
OFFSET_GONE = "no longer available on the server"


@dataclass
class ConnectorWatchdog:
    client: ConnectClient
    name: str
    clock: Callable[[], float] = time.monotonic
    # A restart is cheap and the causes (a registry or database restarting) clear within seconds, so the wait
    # between restarts stays short: a task is back at most ~15 s after its cause has cleared.
    backoff: RestartBackoff = field(default_factory=lambda: RestartBackoff(base_delay=1.0, max_delay=15.0))
    restarts: int = 0
    offset_resets: int = 0
    last_state: str | None = None
    _unreachable_since: float | None = None

    def check(self) -> ConnectorState | None:
        """One round: look, and restart what has failed when the backoff allows. Never raises."""
        now = self.clock()
        try:
            state = self.client.state(self.name)
        except ConnectError as exc:
            if self._unreachable_since is None:
                self._unreachable_since = now
                log.warning("Kafka Connect unreachable: %s", exc)
            return None
        if self._unreachable_since is not None:
            log.info("Kafka Connect reachable again after %.0f s", now - self._unreachable_since)
            self._unreachable_since = None
        summary = f"{state.connector} " + ",".join(f"{t[0]}:{t[1]}" for t in state.tasks)
        if summary != self.last_state:
            log.info("connector %s: %s", self.name, summary)
            self.last_state = summary
        failed = state.connector == "FAILED" or any(t[1] == "FAILED" for t in state.tasks)
        if not failed:
            if state.running:
                self.backoff.healthy(now)
            return state
        if not self.backoff.may_restart(now):
            return state
        trace = state.failed_trace or ""
        stale_offset = OFFSET_GONE in trace
        try:
            if stale_offset:
                self.client.reset_offsets(self.name)
            else:
                self.client.restart_failed(self.name)
        except ConnectError as exc:
            log.warning("%s of %s failed: %s", "offset reset" if stale_offset else "restart", self.name, exc)
            return state
        self.restarts += 1
        wait = self.backoff.restarted(now)
        if stale_offset:
            self.offset_resets += 1
            log.warning("reset the offsets of %s: its stored position is older than its replication slot holds; "
                        "it resumes at the slot's position (restart #%d; next one allowed in %.0f s)",
                        self.name, self.restarts, wait)
        else:
            log.warning("restarted failed %s (restart #%d; next one allowed in %.0f s): %s",
                        self.name, self.restarts, wait, failure_reason(trace))
        return state
