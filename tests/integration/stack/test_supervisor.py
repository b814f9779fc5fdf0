"""infra/stack.sh and its supervisord on a second, private stack.

- `up` is idempotent, `status` tells, `down` leaves no process behind;
- a SIGKILLed service is started again by supervisord and binds its port again while clients keep retrying it;
- a port inside the ephemeral range, or one taken by a stranger, is refused with its name.

Each test brings the private stack to the state it needs, so the tests hold in any order.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("postgres", "redis", "kafka", "registry", "connect", "connect-watchdog")
# Its own ports, below the ephemeral range; another checkout testing at the same time sets another base.
BASE = int(os.environ.get("PRIVATE_STACK_PORT_BASE", "25000"))
PORTS = {"postgres": BASE + 432, "redis": BASE + 379, "kafka": BASE + 92, "registry": BASE + 81, "connect": BASE + 83,
         "web": BASE + 800}


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("private") / "stack"
    env = dict(
        os.environ,
        STACK_HOME=str(home),
        STACK_DIST=str(ROOT / ".stack" / "dist"),
        PG_PORT=str(PORTS["postgres"]),
        REDIS_PORT=str(PORTS["redis"]),
        KAFKA_PORT=str(PORTS["kafka"]),
        KAFKA_CONTROLLER_PORT=str(BASE + 93),
        REGISTRY_PORT=str(PORTS["registry"]),
        CONNECT_PORT=str(PORTS["connect"]),
        WEB_PORT=str(PORTS["web"]),
        WORKER_METRICS_PORT=str(BASE + 900),
    )
    env.pop("KAFKA_NODES", None)

    def run(*args: str, check: bool = True, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", str(ROOT / "infra" / "stack.sh"), *args],
            env={**env, **(extra or {})}, capture_output=True, text=True, timeout=600,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"stack.sh {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    yield home, run
    run("purge", check=False)


def _pid(run, svc: str) -> int | None:
    out = run("pid", svc, check=False).stdout.strip()
    return int(out) if out.isdigit() else None


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_up_twice_is_harmless_and_status_tells(private_stack):
    home, run = private_stack
    run("up")
    pids = {svc: _pid(run, svc) for svc in SERVICES}
    assert all(pids.values()), pids

    second = run("up")
    for svc in SERVICES:
        assert f"{svc} already running" in second.stdout
    assert {svc: _pid(run, svc) for svc in SERVICES} == pids, "a second `up` must start nothing"

    status = run("status")
    for svc in SERVICES:
        line = next(line for line in status.stdout.splitlines() if line.startswith(svc + " "))
        assert "running" in line and str(pids[svc]) in line, line
    assert "web " in status.stdout and "worker-portfolio-1 " in status.stdout


def test_an_up_from_another_environment_leaves_every_running_service_up(private_stack):
    """supervisord stops and re-adds the programs whose environment changed; those that ran are started again."""
    _home, run = private_stack
    run("up")
    before = _pid(run, "connect-watchdog")
    run("up", "redis", extra={"HASHINSIGHT_STACK_TEST_MARK": str(time.time())})
    after = _pid(run, "connect-watchdog")
    assert after and after != before, "the watchdog was to be re-added with the new environment, and running"
    run("status")  # exits 3 when a stack service is not running
    run("up")  # and back to the fixture's environment


class _Hammer:
    """Clients retrying a port as fast as they can, as a client library does against a stopped service."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.attempts = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.001)

    def __enter__(self) -> _Hammer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)


@pytest.mark.parametrize("svc", ["postgres", "redis", "kafka", "registry", "connect", "web"])
def test_a_killed_service_comes_back_and_binds_again_while_clients_retry(private_stack, svc):
    """web: uvicorn's master is killed; its worker processes must not outlive it and keep the port."""
    _home, run = private_stack
    run("up")
    run("up", svc)
    before = _pid(run, svc)
    assert before and _accepts(PORTS[svc])
    with _Hammer(PORTS[svc]) as hammer:
        os.kill(before, 9)
        deadline = time.monotonic() + 120
        after = None
        while time.monotonic() < deadline:
            after = _pid(run, svc)
            if after and after != before and _accepts(PORTS[svc]):
                break
            time.sleep(0.5)
        else:
            log = (private_stack[0] / "logs" / f"{svc}.log").read_text()[-3000:]
            pytest.fail(f"{svc} did not come back on port {PORTS[svc]} within 120 s (pid {after}):\n{log}")
    assert hammer.attempts > 100, "the clients were meant to retry throughout"
    # The new process really serves: `up` finds it ready and starts nothing.
    assert f"{svc} already running (pid {after})" in run("up", svc).stdout


def test_a_port_inside_the_ephemeral_range_is_refused_by_name(private_stack):
    _home, run = private_stack
    lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    inside = (lo + hi) // 2
    proc = run("up", "redis", check=False, extra={"REDIS_PORT": str(inside)})
    assert proc.returncode != 0
    assert f"redis:{inside}" in proc.stderr and "ephemeral" in proc.stderr


def test_port_taken_by_a_stranger_is_named(private_stack):
    _home, run = private_stack
    run("stop", "redis")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", PORTS["redis"]))
        sock.listen()
        proc = run("up", "redis", check=False)
    assert proc.returncode != 0
    assert f"redis: port {PORTS['redis']}" in proc.stderr


def test_down_leaves_no_process(private_stack):
    home, run = private_stack
    run("up")
    pgdata = os.path.realpath(home / "data" / "postgres")
    run("down")
    # -ww: the whole command line (ps cuts it at 80 columns otherwise, and the paths with it)
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(home) not in ps and pgdata not in ps, ps
    assert not any(_accepts(port) for port in PORTS.values())
    stopped = run("status", check=False)
    assert stopped.returncode == 3
    assert all(" stopped " in line for line in stopped.stdout.splitlines()[1:]), stopped.stdout


def _supervisords(home: Path) -> list[int]:
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in ps.splitlines()
            if "supervisord" in line and str(home) in line and " Z" not in f" {line.split()[1]}"]


def test_a_supervisord_that_lost_its_socket_is_stopped_by_down_and_replaced_by_up(private_stack):
    home, run = private_stack
    run("up", "redis")
    [orphan] = _supervisords(home)
    (home / "run" / "supervisor.sock").unlink()  # what an earlier supervisord's exit did to a newer one's socket
    run("down")
    assert _supervisords(home) == [] and not _accepts(PORTS["redis"])

    run("up", "redis")
    [second] = _supervisords(home)
    (home / "run" / "supervisor.sock").unlink()
    time.sleep(11)  # up leaves alone a supervisord younger than 10 s (it may be starting up)
    run("up", "redis")  # the port is still the lost one's: up stops it and starts afresh
    assert second not in _supervisords(home) and len(_supervisords(home)) == 1 and _accepts(PORTS["redis"])
    assert orphan != second
