"""Outside development, web and a worker refuse the built-in JWT secret and short ones, and start with a strong one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import BUILTIN_JWT_SECRET
from tests.integration.api import support

REPO = Path(__file__).resolve().parents[3]
STRONG = "f3b1c9e07d2a4c8e9b6a1d0f5e7c3b2a9d8e6f4c1b0a7e5d"  # 48 bytes, as `openssl rand -hex 24` prints
WEB = [sys.executable, "-m", "app.entrypoints.serve", "--host", "127.0.0.1", "--workers", "1"]
WORKER = [sys.executable, "-m", "workers.intel_consumer"]


def _env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "JWT_KEYS", "JWT_ACTIVE_KID")}
    env["HASHINSIGHT_ENV"] = "production"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _refused(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([*cmd, *(["--port", str(support.free_port())] if cmd is WEB else [])], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78, (proc.returncode, proc.stderr[-2000:])
    assert "refusing to start" in proc.stderr
    return proc.stderr


@pytest.mark.parametrize("cmd", [WEB, WORKER], ids=["web", "worker"])
def test_the_built_in_secret_is_refused_outside_development(cmd: list[str]) -> None:
    err = _refused(cmd, _env())  # JWT_SECRET unset: the built-in default
    assert "JWT_SECRET is the built-in development secret" in err
    err = _refused(cmd, _env(JWT_SECRET=BUILTIN_JWT_SECRET))
    assert "built-in development secret" in err and BUILTIN_JWT_SECRET not in err  # never echoes a secret


@pytest.mark.parametrize("cmd", [WEB, WORKER], ids=["web", "worker"])
def test_a_secret_shorter_than_32_bytes_is_refused(cmd: list[str]) -> None:
    err = _refused(cmd, _env(JWT_SECRET="s" * 31))
    assert "JWT_SECRET is 31 bytes; at least 32 are required" in err
    err = _refused(cmd, _env(JWT_KEYS=f"new:{STRONG},old:short-old-key"))
    assert "JWT_KEYS key 'old' is 13 bytes" in err


def test_an_unknown_environment_is_refused() -> None:
    assert "HASHINSIGHT_ENV='staging'" in _refused(WORKER, _env(HASHINSIGHT_ENV="staging", JWT_SECRET=STRONG))


def test_web_starts_in_production_with_a_strong_secret(tmp_path: Path) -> None:
    env = _env(JWT_SECRET=STRONG)
    env.pop("HASHINSIGHT_ENV")  # unset means production
    with support.uvicorn_server(tmp_path, workers=1, env=env) as server:
        assert server.process.poll() is None


def test_a_worker_starts_in_production_with_a_strong_secret(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(WORKER, cwd=REPO, env=_env(JWT_SECRET=STRONG), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "consuming" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the worker did not start consuming in 60 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
