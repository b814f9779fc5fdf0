"""The outbox connector heals by itself: a task that fails is restarted by the supervised connect-watchdog.

Kafka Connect never restarts a FAILED task on its own. Here the task fails for real: the registry is stopped and
the task restarted, so its converter has no cached schema; the next outbox event cannot be converted and the
task goes FAILED. /api/health names the failed task and why. Once the registry is back the watchdog (a
supervisord program of the stack, not this test) restarts the task, and the event is delivered.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from app.adapters.kafka_connect import ConnectClient
from app.config import get_settings
from app.service_layer.health import CONNECTOR_NAME, ProbeRunner, check_health
from tests.integration.pipeline.harness import add_miner, records_for

ROOT = Path(__file__).resolve().parents[3]


def _stack(*args: str) -> str:
    proc = subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _task_state(client: ConnectClient) -> str:
    return client.state(CONNECTOR_NAME).tasks[0][1]


@pytest.fixture
def registry_back():
    yield
    _stack("up", "registry")


def test_a_failed_task_is_restarted_by_the_watchdog_and_the_event_arrives(fleet, registry_back):
    assert "connect-watchdog" in _stack("status")
    client = ConnectClient(get_settings().connect_url)
    client.wait_running(CONNECTOR_NAME, timeout=60)
    watchdog_log = ROOT / ".stack" / "logs" / "connect-watchdog.log"
    log_before = watchdog_log.stat().st_size if watchdog_log.exists() else 0

    _stack("stop", "registry")
    # A fresh task: its converter has not cached the outbox schema yet, so it needs the registry.
    client._call("POST", f"/connectors/{CONNECTOR_NAME}/tasks/0/restart")
    time.sleep(2)
    miner_id = add_miner(fleet)

    deadline = time.monotonic() + 60
    while _task_state(client) != "FAILED":
        assert time.monotonic() < deadline, "the task did not fail without its registry"
        time.sleep(0.2)
    health = check_health(runner=ProbeRunner(), budget=5.0)
    failed = [t for t in health["connector_tasks"] if t["state"] != "RUNNING"]
    assert failed, health["connector_tasks"]
    assert health["status"] == "degraded"
    assert any("outbox connector task 0 is" in r for r in health["reasons"]), health["reasons"]

    _stack("up", "registry")
    deadline = time.monotonic() + 90  # the watchdog waits at most 15 s between restarts
    while not client.state(CONNECTOR_NAME).running:
        assert time.monotonic() < deadline, f"not healed within 90 s: {client.state(CONNECTOR_NAME)}"
        time.sleep(0.5)
    found = records_for(fleet.user_id, want=1, timeout=60)
    assert [env.entity_id for _msg, env in found] == [miner_id]
    restarts = watchdog_log.read_text()[log_before:]
    assert "restarted failed hashinsight-outbox" in restarts and "caused by" in restarts, restarts[-2000:]
    assert check_health(runner=ProbeRunner(), budget=5.0)["connector_tasks"][0]["state"] == "RUNNING"


def test_a_stored_offset_older_than_the_slot_is_cleared_by_the_watchdog_and_events_flow(fleet):
    """What a Kafka cluster swapped or restored under the connector leaves behind: its stored source offset names
    WAL the replication slot has long released, and Debezium refuses to start ("no longer available on the
    server"). The watchdog clears the offsets; the connector resumes at the slot's position by itself."""
    client = ConnectClient(get_settings().connect_url)
    client.wait_running(CONNECTOR_NAME, timeout=60)
    watchdog_log = ROOT / ".stack" / "logs" / "connect-watchdog.log"
    log_before = watchdog_log.stat().st_size if watchdog_log.exists() else 0
    stored = client._call("GET", f"/connectors/{CONNECTOR_NAME}/offsets").json()["offsets"]
    assert stored, "the connector has stored no offset yet"
    partition, offset = stored[0]["partition"], stored[0]["offset"]
    ancient = {**offset, **{k: 4096 for k in ("lsn", "lsn_commit", "lsn_proc") if k in offset}}
    assert ancient != offset, offset

    client._call("PUT", f"/connectors/{CONNECTOR_NAME}/stop")
    client._wait_for(CONNECTOR_NAME, "STOPPED", 30)
    patched = client._call("PATCH", f"/connectors/{CONNECTOR_NAME}/offsets",
                           json={"offsets": [{"partition": partition, "offset": ancient}]})
    assert patched.status_code == 200, patched.text
    client.resume(CONNECTOR_NAME)

    deadline = time.monotonic() + 120
    while "reset the offsets of hashinsight-outbox" not in watchdog_log.read_text()[log_before:]:
        assert time.monotonic() < deadline, watchdog_log.read_text()[log_before:][-2000:]
        time.sleep(0.5)
    client.wait_running(CONNECTOR_NAME, timeout=60)
    miner_id = add_miner(fleet)
    found = records_for(fleet.user_id, want=1, timeout=60)
    assert [env.entity_id for _msg, env in found] == [miner_id]
