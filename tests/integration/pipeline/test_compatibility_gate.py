"""The compatibility gate: an incompatible schema change is refused by the contract check (against the released
baseline) and by the registry (BACKWARD on every event subject, set by make topics / make register), while the
connector's own registrations keep working under the rule."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import requests

from app.config import get_settings
from tests.integration.pipeline.harness import add_miner
from tools import contracts_check
from tools.topics import subject_compatibility

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
HEADERS = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def _registry() -> str:
    return get_settings().schema_registry_url.rstrip("/")


def _incompatible(schema: dict) -> dict:
    """A new required field without a default: records written before cannot be read with it."""
    return {**schema, "fields": [*schema["fields"], {"name": "added_later", "type": "string", "doc": "new"}]}


def test_the_connector_registers_under_the_rule_and_an_incompatible_version_is_refused(fleet):
    # A real event through the real connector: its value schema is (re)registered under the BACKWARD rule.
    add_miner(fleet)
    deadline = time.monotonic() + 60
    while "events.miner-value" not in requests.get(f"{_registry()}/subjects", timeout=10).json():
        assert time.monotonic() < deadline, "the connector registered no events.miner-value"
        time.sleep(0.5)
    assert subject_compatibility("events.miner-value") == "BACKWARD"
    latest = requests.get(f"{_registry()}/subjects/events.miner-value/versions/latest", timeout=10).json()
    current = json.loads(latest["schema"])
    check = requests.post(f"{_registry()}/compatibility/subjects/events.miner-value/versions/latest",
                          data=json.dumps({"schema": json.dumps(_incompatible(current))}), headers=HEADERS, timeout=10)
    assert check.status_code == 200 and check.json()["is_compatible"] is False
    refused = requests.post(f"{_registry()}/subjects/events.miner-value/versions",
                            data=json.dumps({"schema": json.dumps(_incompatible(current))}), headers=HEADERS,
                            timeout=10)
    assert refused.status_code == 409, refused.text
    versions = requests.get(f"{_registry()}/subjects/events.miner-value/versions", timeout=10).json()
    assert str(latest["version"]) == str(max(versions))  # nothing was registered


def test_one_incompatible_contract_change_is_refused_by_the_check_and_by_the_registry(tmp_path):
    copy = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, copy)
    released = json.loads((copy / "released" / "avro" / "miner_added.avsc").read_text())
    changed = _incompatible(released)
    (copy / "avro" / "miner_added.avsc").write_text(json.dumps(changed, indent=2))

    report = contracts_check.check_all(copy)
    assert any("miner_added.avsc" in e and "not BACKWARD compatible" in e for e in report.errors), report.errors

    subject = f"events.compat-probe-{uuid.uuid4().hex[:8]}-value"
    try:
        first = requests.post(f"{_registry()}/subjects/{subject}/versions",
                              data=json.dumps({"schema": json.dumps(released)}), headers=HEADERS, timeout=10)
        assert first.status_code == 200, first.text
        second = requests.post(f"{_registry()}/subjects/{subject}/versions",
                               data=json.dumps({"schema": json.dumps(changed)}), headers=HEADERS, timeout=10)
        assert second.status_code == 409 and "Incompatible" in second.text, second.text
        # The compatible form of the same change (a default) passes both.
        field = {"name": "added_later", "type": "string", "doc": "new", "default": ""}
        compatible = {**released, "fields": [*released["fields"], field]}
        (copy / "avro" / "miner_added.avsc").write_text(json.dumps(compatible, indent=2))
        assert contracts_check.check_all(copy).ok
        third = requests.post(f"{_registry()}/subjects/{subject}/versions",
                              data=json.dumps({"schema": json.dumps(compatible)}), headers=HEADERS, timeout=10)
        assert third.status_code == 200, third.text
    finally:
        requests.delete(f"{_registry()}/subjects/{subject}", timeout=10)
        requests.delete(f"{_registry()}/subjects/{subject}?permanent=true", timeout=10)


def test_a_clean_checkout_compares_with_the_release_not_with_itself():
    report = contracts_check.check_all(CONTRACTS)
    assert report.ok, report.errors
    assert (CONTRACTS / "released" / "VERSION").read_text().strip()
    released = {p.name for p in (CONTRACTS / "released" / "avro").glob("*.avsc")}
    current = {p.name for p in (CONTRACTS / "avro").glob("*.avsc")}
    assert released and released <= current  # nothing released was removed
    # What was added since the release has no baseline, and the report says so rather than comparing it with itself.
    assert {f"avro/{name}: new schema, no compatibility baseline" for name in current - released} <= set(report.notes)
