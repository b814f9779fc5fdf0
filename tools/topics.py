"""Create and update Kafka topics from the channel bindings in contracts/asyncapi.yaml (`make topics`), and make
the schema registry enforce BACKWARD compatibility on the event subjects.

Idempotent: a missing topic is created; an existing one gets its configuration set to the binding's and its
partition count raised to the binding's. Partitions are never lowered (Kafka cannot), which is reported.

Compatibility: the registry's global rule is set to BACKWARD, so every subject, including the ones registered
later (the connector auto-registers `events.<domain>-value` / `-key` at its first record, the dead-letter
serializer `events.dlq-value`), gets it from birth; each existing `events.*` subject also gets its own BACKWARD
rule. A new schema version that cannot read the previous one's records is then refused with 409. The schemas the
connector derives from the outbox table change only when the table does, and migrations only add nullable
columns, which stay BACKWARD compatible. `make register` applies the rule too.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from app.config import get_settings

COMPATIBILITY = "BACKWARD"
EVENT_SUBJECT_PREFIX = "events."
ASYNCAPI = Path(__file__).resolve().parents[1] / "contracts" / "asyncapi.yaml"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(doc: dict[str, Any]) -> list[TopicSpec]:
    specs = []
    for channel_id, channel in (doc.get("channels") or {}).items():
        kafka = ((channel or {}).get("bindings") or {}).get("kafka")
        if not kafka:
            continue
        name = kafka.get("topic") or channel.get("address")
        if not name:
            raise ValueError(f"channel {channel_id}: kafka binding names no topic")
        config = {}
        for key, value in (kafka.get("topicConfiguration") or {}).items():
            config[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        specs.append(TopicSpec(name, int(kafka.get("partitions", 1)), int(kafka.get("replicas", 1)), config))
    if not specs:
        raise ValueError("no channel of the AsyncAPI document has a kafka binding")
    return sorted(specs, key=lambda s: s.name)


def load_specs(path: Path = ASYNCAPI) -> list[TopicSpec]:
    return topic_specs(yaml.safe_load(path.read_text()))


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Bring the cluster in line with the specs; returns one line per topic saying what was done."""
    metadata = admin.list_topics(timeout=timeout)
    existing = metadata.topics
    brokers = len(metadata.brokers)
    report = []
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, min(s.replicas, brokers), config=s.config) for s in missing],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            fut.result()
            spec = next(s for s in missing if s.name == name)
            capped = f" ({brokers} replica(s): the cluster has {brokers} broker(s))" if spec.replicas > brokers else ""
            report.append(f"created  {name}{capped}")
    for spec in specs:
        if spec.name not in existing:
            continue
        current = len(existing[spec.name].partitions)
        actions = []
        if current < spec.partitions:
            admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name].result()
            actions.append(f"partitions {current} -> {spec.partitions}")
        elif current > spec.partitions:
            actions.append(f"has {current} partitions, contract says {spec.partitions} (cannot lower; left)")
        drift = _config_drift(admin, spec)
        if drift:
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                spec.name,
                incremental_configs=[
                    ConfigEntry(k, spec.config[k], incremental_operation=AlterConfigOpType.SET) for k in drift
                ],
            )
            for fut in admin.incremental_alter_configs([resource]).values():
                fut.result()
            actions.append("set " + ", ".join(f"{k}={spec.config[k]}" for k in drift))
        report.append(f"updated  {spec.name}: {', '.join(actions)}" if actions else f"ok       {spec.name}")
    return report


def _config_drift(admin: AdminClient, spec: TopicSpec) -> list[str]:
    """Keys whose live value differs from the contract's."""
    if not spec.config:
        return []
    resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
    live = next(iter(admin.describe_configs([resource]).values())).result()
    return sorted(k for k, v in spec.config.items() if k not in live or live[k].value != v)


def missing_topics(admin: AdminClient, specs: list[TopicSpec]) -> list[str]:
    existing = admin.list_topics(timeout=10).topics
    return [s.name for s in specs if s.name not in existing]


def ensure_compatibility(registry_url: str | None = None, timeout: float = 10.0) -> list[str]:
    """Global BACKWARD rule, and a BACKWARD rule on each existing events.* subject (Confluent-compatible API)."""
    url = (registry_url or get_settings().schema_registry_url).rstrip("/")
    body = {"compatibility": COMPATIBILITY}
    report = []
    resp = requests.put(f"{url}/config", json=body, timeout=timeout)
    resp.raise_for_status()
    report.append(f"registry compatibility {COMPATIBILITY} (global)")
    subjects = requests.get(f"{url}/subjects", timeout=timeout)
    subjects.raise_for_status()
    for subject in sorted(s for s in subjects.json() if s.startswith(EVENT_SUBJECT_PREFIX)):
        requests.put(f"{url}/config/{subject}", json=body, timeout=timeout).raise_for_status()
        report.append(f"registry compatibility {COMPATIBILITY} on {subject}")
    return report


def subject_compatibility(subject: str, registry_url: str | None = None) -> str | None:
    url = (registry_url or get_settings().schema_registry_url).rstrip("/")
    # defaultToGlobal: a subject without a rule of its own is governed by the global one (Apicurio answers NONE
    # for it otherwise, although it enforces the global rule).
    resp = requests.get(f"{url}/config/{subject}", params={"defaultToGlobal": "true"}, timeout=10)
    return resp.json().get("compatibilityLevel") if resp.status_code == 200 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asyncapi", type=Path, default=ASYNCAPI)
    args = parser.parse_args(argv)
    specs = load_specs(args.asyncapi)
    admin = AdminClient({"bootstrap.servers": get_settings().kafka_brokers})
    try:
        for line in ensure_topics(admin, specs):
            print(line)
    except Exception as exc:  # a broker error is the user's to read, not a traceback
        print(f"topics: {exc}", file=sys.stderr)
        return 1
    try:
        for line in ensure_compatibility():
            print(line)
    except requests.RequestException as exc:
        print(f"topics: the schema registry refused the compatibility rule: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
