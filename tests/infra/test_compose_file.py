"""docker-compose.yml holds every service of the brief, wired by health, bound to loopback but for web, with its
secrets from the env file and restart policies, and it lints (docker compose or Debian's docker-compose, which
infra/stack.sh installs: a machine with neither fails this test rather than passing it unchecked)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INFRA = {"postgres", "redis", "kafka", "registry", "connect"}
APPS = {"web", "worker-portfolio", "worker-intel", "connect-watchdog"}
JOBS = {"migrate", "topic-init", "connector-init"}


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_service_of_the_brief_is_there():
    services = _services()
    assert INFRA | APPS | JOBS | {"kafka-ui"} <= set(services)
    assert services["postgres"]["image"].startswith("timescale/timescaledb")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "debezium/connect" in services["connect"]["image"]
    assert "apicurio-registry" in services["registry"]["image"]


def test_long_running_services_have_healthchecks_and_start_in_order():
    services = _services()
    for name in INFRA | {"web"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in JOBS else "service_healthy"
            assert cond["condition"] == expected, f"{name} -> {dep}: {cond}"
    assert {"migrate", "topic-init"} <= set(services["worker-portfolio"]["depends_on"])


def test_host_ports_match_the_native_stack():
    env = {}
    for line in (ROOT / "infra" / "stack.env").read_text().splitlines():
        if "=${" in line and not line.startswith("#"):
            key, rest = line.split("=", 1)
            env[key] = rest.split(":-", 1)[1].rstrip("}")
    services = _services()
    published = {name: {p.split(":")[-2] for p in svc.get("ports", [])} for name, svc in services.items()}
    assert env["PG_PORT"] in published["postgres"]
    assert env["REDIS_PORT"] in published["redis"]
    assert env["KAFKA_PORT"] in published["kafka"]
    assert env["REGISTRY_PORT"] in published["registry"]
    assert env["CONNECT_PORT"] in published["connect"]
    assert env["WEB_PORT"] in published["web"]


def test_only_web_is_published_beyond_loopback():
    for name, svc in _services().items():
        for port in svc.get("ports", []):
            if name == "web":
                continue
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_secrets_come_from_the_env_file():
    text = COMPOSE.read_text()
    for literal in ("POSTGRES_PASSWORD: postgres", "postgres:postgres@", "hashinsight_api:hashinsight_api@",
                    "PASSWORD: registry", "dev-only-change-me"):
        assert literal not in text, literal
    services = _services()
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert services["web"]["environment"]["JWT_SECRET"].startswith("${JWT_SECRET:?")
    assert services["web"]["environment"]["HASHINSIGHT_ENV"] == "${HASHINSIGHT_ENV:-production}"
    example = (ROOT / ".env.example").read_text()
    for var in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "REGISTRY_DB_PASSWORD", "API_DB_PASSWORD",
                "WORKER_DB_PASSWORD", "DEBEZIUM_DB_PASSWORD", "JWT_SECRET"):
        assert f"\n{var}=" in example, var


def test_long_running_services_restart_and_the_watchdog_runs():
    services = _services()
    for name in INFRA | APPS | {"kafka-ui"}:
        assert services[name].get("restart") == "unless-stopped", name
    for name in JOBS:
        assert services[name].get("restart") == "no", name
    watchdog = services["connect-watchdog"]
    assert watchdog["command"] == ["python", "-m", "app.entrypoints.connector_watchdog"]
    assert watchdog["image"] == services["web"]["image"]
    assert watchdog["depends_on"]["connect"]["condition"] == "service_healthy"


def _linter() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (infra/stack.sh installs Debian's "
                "docker-compose); docker-compose.yml cannot be linted", pytrace=False)


def test_compose_file_lints_with_the_example_env_file():
    cmd = [*_linter(), "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE), "config", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_run_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    cmd = [*_linter(), "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0 and "in .env" in proc.stderr, proc.stderr
