"""docker-compose.yml holds every service of the brief, wired by health, and lints where a linter exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
INFRA = {"postgres", "redis", "kafka", "registry", "connect"}
APPS = {"web", "worker-portfolio", "worker-intel"}
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
    published = {name: {p.split(":")[0] for p in svc.get("ports", [])} for name, svc in services.items()}
    assert env["PG_PORT"] in published["postgres"]
    assert env["REDIS_PORT"] in published["redis"]
    assert env["KAFKA_PORT"] in published["kafka"]
    assert env["REGISTRY_PORT"] in published["registry"]
    assert env["CONNECT_PORT"] in published["connect"]
    assert env["WEB_PORT"] in published["web"]


def test_compose_file_lints():
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "-f", str(COMPOSE), "config", "-q"]
    elif shutil.which("docker-compose"):
        cmd = ["docker-compose", "-f", str(COMPOSE), "config", "-q"]
    else:
        print("no docker compose plugin and no docker-compose here: checked the file's structure only")
        return
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
