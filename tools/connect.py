"""The Debezium outbox connector: `make register` (create or update, idempotent) and `make connect` (state).

connectors/outbox.json holds the connector as it runs on the native stack. Where Connect reaches PostgreSQL
or the registry under other names (docker compose), CONNECTOR_DATABASE_HOST, CONNECTOR_DATABASE_PORT and
CONNECTOR_REGISTRY_URL override those settings; CONNECTOR_DATABASE_PASSWORD replaces the development password.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import psycopg2
import requests
from confluent_kafka.admin import AdminClient

from app.adapters.dead_letters import DLQ_TOPIC
from app.adapters.kafka_connect import ConnectClient, ConnectError
from app.config import get_settings
from tools.topics import ensure_compatibility, load_specs, missing_topics

CONNECTOR_FILE = Path(__file__).resolve().parents[1] / "connectors" / "outbox.json"


def routed_domains(config: dict[str, str]) -> set[str]:
    """The event domains the connector's predicates let through, e.g. {'miner', 'treasury'}."""
    pattern = config["predicates.isEventTopic.pattern"]
    match = re.fullmatch(r"events\\\.\(([a-z_|]+)\)", pattern)
    if not match:
        raise ConnectError(f"predicates.isEventTopic.pattern {pattern!r} is not of the form events\\.(a|b)")
    domains = set(match.group(1).split("|"))
    kind_pattern = "(" + match.group(1) + ")\\.[a-z_]+"
    if config["predicates.isEventKind.pattern"] != kind_pattern:
        raise ConnectError(f"predicates.isEventKind.pattern must be {kind_pattern!r}, the same domains")
    return domains


def contract_domains() -> set[str]:
    return {spec.name.split(".", 1)[1] for spec in load_specs() if spec.name != DLQ_TOPIC}


def connector_definition(path: Path = CONNECTOR_FILE) -> tuple[str, dict[str, str]]:
    body = json.loads(path.read_text())
    config = dict(body["config"])
    # The predicates name the event domains so that nothing else Debezium emits (heartbeats, logical
    # messages) is rerouted; they must list exactly the contract's event topics.
    if routed_domains(config) != contract_domains():
        raise ConnectError(
            f"{path.name} routes domains {sorted(routed_domains(config))} but contracts/asyncapi.yaml declares "
            f"{sorted(contract_domains())}: update the two predicates patterns"
        )
    settings = get_settings()
    config["database.port"] = os.environ.get("CONNECTOR_DATABASE_PORT", str(settings.pg_port))
    if host := os.environ.get("CONNECTOR_DATABASE_HOST"):
        config["database.hostname"] = host
    if password := os.environ.get("CONNECTOR_DATABASE_PASSWORD"):
        config["database.password"] = password
    registry = os.environ.get("CONNECTOR_REGISTRY_URL", settings.registry_native_url)
    for key in [k for k in config if k.endswith("converter.apicurio.registry.url")]:
        config[key] = registry
    return body["name"], config


def _slot_report(slot: str) -> str:
    try:
        conn = psycopg2.connect(get_settings().admin_database_url, connect_timeout=3)
    except psycopg2.Error as exc:
        return f"slot {slot}: database unreachable ({str(exc).strip()})"
    try:
        with conn.cursor() as cur:
            cur.execute(
                """SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
                     FROM pg_replication_slots WHERE slot_name = %s""",
                (slot,),
            )
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return f"slot {slot}: absent (created when the connector first starts)"
    return f"slot {slot}: {'active' if row[0] else 'inactive'}, {row[1] or 0} bytes behind the WAL"


def register() -> int:
    name, config = connector_definition()
    admin = AdminClient({"bootstrap.servers": get_settings().kafka_brokers})
    missing = missing_topics(admin, load_specs())
    if missing:
        # Connect would otherwise create them itself with one partition and default retention.
        names = ", ".join(missing)
        print(f"register: topics {names} do not exist yet; run `make topics` first", file=sys.stderr)
        return 1
    # The connector auto-registers its schemas: the registry's BACKWARD rule must be in place before it does.
    ensure_compatibility()
    client = ConnectClient(get_settings().connect_url)
    created = client.put_config(name, config)
    state = client.state(name)
    if state.connector in ("STOPPED", "PAUSED"):
        client.resume(name)
    elif state.failed_trace:
        client.restart_failed(name)
    state = client.wait_running(name)
    verb = "created" if created else "updated"
    print(f"{verb} {name}: {state.connector}, {len(state.tasks)} task(s) running")
    print(_slot_report(config["slot.name"]))
    return 0


def status() -> int:
    name, config = connector_definition()
    state = ConnectClient(get_settings().connect_url).state(name)
    print(f"connector {name}: {state.connector}")
    for task_id, task_state, trace in state.tasks:
        print(f"  task {task_id}: {task_state}")
        if trace:
            print("    " + trace.strip().splitlines()[0])
    print(_slot_report(config["slot.name"]))
    return 0 if state.running else 3


def reset() -> int:
    """Recovery when the task fails with "... no longer available on the server": the stored offset points
    at WAL the slot has already released. Clearing it restarts the connector at the slot's own position,
    which still holds every change not yet confirmed, so nothing committed after it is lost."""
    name, _config = connector_definition()
    client = ConnectClient(get_settings().connect_url)
    client.reset_offsets(name)
    state = client.wait_running(name)
    print(f"reset {name}: offsets cleared, {state.connector}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Register, inspect or reset the outbox connector.")
    parser.add_argument("command", choices=["register", "status", "reset"])
    args = parser.parse_args(argv)
    commands = {"register": register, "status": status, "reset": reset}
    try:
        return commands[args.command]()
    except ConnectError as exc:
        print(f"connect: {exc}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"connect: the schema registry is unreachable or refused the compatibility rule: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
