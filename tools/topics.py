"""Create and update Kafka topics from the channel bindings in contracts/asyncapi.yaml (`make topics`).

Idempotent: a missing topic is created; an existing one gets its configuration set to the binding's and its
partition count raised to the binding's. Partitions are never lowered (Kafka cannot), which is reported.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    existing = admin.list_topics(timeout=timeout).topics
    report = []
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replicas, config=s.config) for s in missing],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            fut.result()
            report.append(f"created  {name}")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
