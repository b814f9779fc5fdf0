"""Kafka Connect REST API: just what registering, inspecting and resetting a connector needs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests


class ConnectError(RuntimeError):
    pass


def failure_reason(trace: str, limit: int = 500) -> str:
    """A failed task's trace in one line: its first line and, when there is one, the innermost cause
    ("Tolerance exceeded in error handler" alone says nothing about why)."""
    lines = [line.strip() for line in (trace or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no trace"
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    reason = lines[0] if not causes else f"{lines[0]} (caused by {causes[-1]})"
    return reason[:limit]


@dataclass(frozen=True)
class ConnectorState:
    name: str
    connector: str  # RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, or MISSING when not registered
    tasks: tuple[tuple[int, str, str], ...]  # (task id, state, trace)

    @property
    def running(self) -> bool:
        return self.connector == "RUNNING" and bool(self.tasks) and all(t[1] == "RUNNING" for t in self.tasks)

    @property
    def failed_trace(self) -> str | None:
        return next((t[2] for t in self.tasks if t[1] == "FAILED"), None)


class ConnectClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return requests.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ConnectError(f"Kafka Connect at {self.base_url} is unreachable: {exc}") from exc

    def state(self, name: str) -> ConnectorState:
        resp = self._call("GET", f"/connectors/{name}/status")
        if resp.status_code == 404:
            return ConnectorState(name, "MISSING", ())
        if resp.status_code != 200:
            raise ConnectError(f"status of {name}: HTTP {resp.status_code} {resp.text[:500]}")
        body = resp.json()
        tasks = tuple((t["id"], t["state"], t.get("trace", "")) for t in body.get("tasks", []))
        return ConnectorState(name, body["connector"]["state"], tasks)

    def put_config(self, name: str, config: dict[str, str]) -> bool:
        """Create or update; True when the connector was created."""
        resp = self._call("PUT", f"/connectors/{name}/config", json=config)
        if resp.status_code not in (200, 201):
            raise ConnectError(f"config of {name} refused: HTTP {resp.status_code} {resp.text[:2000]}")
        return resp.status_code == 201

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/resume")

    def restart_failed(self, name: str) -> None:
        """Restart the connector and its tasks that are FAILED (Connect never does this by itself)."""
        resp = self._call("POST", f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"})
        if resp.status_code not in (200, 202, 204):
            raise ConnectError(f"restart of {name} refused: HTTP {resp.status_code} {resp.text[:500]}")

    def reset_offsets(self, name: str, timeout: float = 30.0) -> None:
        """Stop the connector, forget its stored source offsets, resume: it starts at its slot's position."""
        self._stop_and_forget_offsets(name, timeout)
        self.resume(name)

    def _stop_and_forget_offsets(self, name: str, timeout: float) -> None:
        self._call("PUT", f"/connectors/{name}/stop")
        self._wait_for(name, "STOPPED", timeout)
        resp = self._call("DELETE", f"/connectors/{name}/offsets")
        if resp.status_code != 200:
            raise ConnectError(f"offsets of {name} not reset: HTTP {resp.status_code} {resp.text[:500]}")

    def _wait_for(self, name: str, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.state(name).connector != wanted:
            if time.monotonic() > deadline:
                raise ConnectError(f"{name} not {wanted} after {timeout:.0f}s")
            time.sleep(0.25)

    def wait_running(self, name: str, timeout: float = 60.0) -> ConnectorState:
        deadline = time.monotonic() + timeout
        state = self.state(name)
        while not state.running and time.monotonic() < deadline:
            if state.failed_trace:
                raise ConnectError(f"{name} task failed:\n{state.failed_trace[:4000]}")
            time.sleep(0.5)
            state = self.state(name)
        if not state.running:
            raise ConnectError(f"{name} not running after {timeout:.0f}s: {state.connector} {state.tasks}")
        return state

    def remove(self, name: str, timeout: float = 30.0) -> None:
        """Stop, clear the stored source offsets, delete: a later connector of that name starts afresh."""
        if self.state(name).connector == "MISSING":
            return
        self._stop_and_forget_offsets(name, timeout)
        self._call("DELETE", f"/connectors/{name}")
        self._wait_for(name, "MISSING", timeout)
