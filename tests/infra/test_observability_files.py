"""The alert rules, the Grafana dashboard and the compose wiring name only metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app" / "adapters" / "metrics.py", ROOT / "app" / "service_layer" / "pipeline_metrics.py"]
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _exported() -> set[str]:
    names = set()
    for source in SOURCES:
        names |= set(re.findall(r'"(hashinsight_[a-z_]+)"', source.read_text()))
    return names


def _used(text: str) -> set[str]:
    used = set()
    for name in re.findall(r"hashinsight_[a-z_]+", text):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in _exported():
                name = name[: -len(suffix)]
        used.add(name)
    return used


def test_alert_rules_name_exported_metrics_and_the_docs_describe_each():
    rules = yaml.safe_load((ROOT / "infra" / "compose" / "alerts.yml").read_text())["groups"][0]["rules"]
    assert len(rules) >= 10
    for rule in rules:
        assert _used(rule["expr"]) <= _exported(), rule["alert"]
    docs = (ROOT / "docs" / "operations.md").read_text().split("## Alerts", 1)[1]
    for rule in rules:
        assert f"`{rule['alert']}`" in docs, f"docs/operations.md does not describe {rule['alert']}"


def test_the_dashboard_queries_exported_metrics_only():
    dashboard = json.loads((ROOT / "infra" / "grafana" / "hashinsight-bus.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    assert set().union(*(_used(e) for e in exprs)) <= _exported()


def test_compose_provisions_the_dashboard_and_scrapes_web_and_workers():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = services["grafana"]["volumes"]
    assert "./infra/grafana:/var/lib/grafana/dashboards:ro" in mounts
    for mount in mounts + services["prometheus"]["volumes"]:
        assert (ROOT / mount.split(":")[0]).exists(), mount
    scrape = yaml.safe_load((ROOT / "infra" / "compose" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t for job in scrape for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"web:8000", "worker-portfolio:9101", "worker-intel:9101"}
