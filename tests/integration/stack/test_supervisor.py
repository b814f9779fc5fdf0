"""infra/stack.sh on a second, private stack: up is idempotent, status tells, down leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("postgres", "redis", "kafka", "registry", "connect")


def _pids(home: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (home / "run").glob("*.pid")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def private_stack(tmp_path):
    home = tmp_path / "stack"
    env = dict(
        os.environ,
        STACK_HOME=str(home),
        STACK_DIST=str(ROOT / ".stack" / "dist"),
        PG_PORT="55532",
        REDIS_PORT="56479",
        KAFKA_PORT="59192",
        KAFKA_CONTROLLER_PORT="59193",
        REGISTRY_PORT="58181",
        CONNECT_PORT="58183",
        WEB_PORT="8100",
    )

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", str(ROOT / "infra" / "stack.sh"), *args],
            env=env, capture_output=True, text=True, timeout=600,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"stack.sh {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    yield home, run
    run("purge", check=False)


def test_up_twice_is_harmless_and_down_leaves_no_process(private_stack):
    home, run = private_stack

    first = run("up")
    pids = _pids(home)
    assert set(pids) == set(SERVICES), first.stdout
    assert all(_alive(pid) for pid in pids.values())

    second = run("up")
    for svc in SERVICES:
        assert f"{svc} already running" in second.stdout
    assert _pids(home) == pids, "a second `up` must start nothing"

    status = run("status")
    for svc in SERVICES:
        line = next(line for line in status.stdout.splitlines() if line.startswith(svc + " "))
        assert "running" in line and str(pids[svc]) in line

    pgdata = os.path.realpath(home / "data" / "postgres")
    run("down")
    assert not list((home / "run").glob("*.pid"))
    left = [f"{svc}:{pid}" for svc, pid in pids.items() if _alive(pid)]
    assert not left, f"processes left after down: {left}"
    # Nothing else of this private stack either (its postgres children, JVM threads are in-process).
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(home) not in ps and pgdata not in ps
    assert "59192" not in ps and "56479" not in ps

    stopped = run("status", check=False)
    assert stopped.returncode == 3
    assert all(" stopped " in line for line in stopped.stdout.splitlines()[1:])


def test_port_taken_by_a_stranger_is_named(private_stack, tmp_path):
    home, run = private_stack
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 56479))
        sock.listen()
        proc = run("up", "redis", check=False)
    assert proc.returncode != 0
    assert "redis: port 56479" in proc.stderr
