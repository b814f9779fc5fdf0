"""`make contracts-check` passes on the real contracts and fails on deliberately broken copies of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import contracts_check
from tools.contracts_check import CONTRACTS_DIR, REPO_ROOT, Report, check_all, check_backward_git

Mutation = Callable[[Path], None]


def copy_contracts(tmp_path: Path) -> Path:
    target = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, target)
    return target


def edit_yaml(name: str, change: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(contracts: Path) -> None:
        path = contracts / name
        doc = yaml.safe_load(path.read_text())
        change(doc)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    return mutate


def edit_avsc(name: str, change: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(contracts: Path) -> None:
        path = contracts / "avro" / name
        schema = json.loads(path.read_text())
        change(schema)
        path.write_text(json.dumps(schema, indent=2))

    return mutate


def replace_text(name: str, old: str, new: str) -> Mutation:
    def mutate(contracts: Path) -> None:
        path = contracts / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new))

    return mutate


def broken(tmp_path: Path, mutate: Mutation) -> Report:
    contracts = copy_contracts(tmp_path)
    mutate(contracts)
    # Baseline = the real schemas, so Avro changes in the copy are judged against them.
    return check_all(contracts, baseline_dir=CONTRACTS_DIR / "avro")


def post_miners(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["paths"]["/api/miners"]["post"]


def test_real_contracts_pass() -> None:
    report = check_all(CONTRACTS_DIR)
    assert report.errors == []


def test_real_contracts_pass_against_themselves_as_baseline() -> None:
    report = check_all(CONTRACTS_DIR, baseline_dir=CONTRACTS_DIR / "avro")
    assert report.errors == []


def test_cli_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "tools.contracts_check"], cwd=REPO_ROOT, capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()
    contracts = copy_contracts(tmp_path)
    edit_yaml("openapi.yaml", lambda d: post_miners(d).pop("operationId"))(contracts)
    bad = subprocess.run(
        [sys.executable, "-m", "tools.contracts_check", "--contracts", str(contracts)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "no operationId" in bad.stderr


def _add_required_field(schema: dict[str, Any]) -> None:
    schema["fields"].append({"name": "rack", "type": "string", "doc": "Rack of the miner."})


def _drop_enum_symbol(schema: dict[str, Any]) -> None:
    schema["fields"][1]["type"]["symbols"].remove("maintenance")


BREAKAGES: dict[str, tuple[Mutation, str]] = {
    "missing operationId": (
        edit_yaml("openapi.yaml", lambda d: post_miners(d).pop("operationId")),
        "POST /api/miners: no operationId",
    ),
    "operationId not snake_case": (
        edit_yaml("openapi.yaml", lambda d: post_miners(d).update(operationId="createMiner")),
        "is not a snake_case Python identifier",
    ),
    "first tag not declared": (
        edit_yaml("openapi.yaml", lambda d: post_miners(d).update(tags=["fleet"])),
        "first tag 'fleet'",
    ),
    "missing request example": (
        edit_yaml(
            "openapi.yaml", lambda d: post_miners(d)["requestBody"]["content"]["application/json"].pop("example")
        ),
        "request body application/json has no example",
    ),
    "missing response example": (
        edit_yaml(
            "openapi.yaml",
            lambda d: d["paths"]["/api/portfolio"]["get"]["responses"]["200"]["content"]["application/json"].pop(
                "example"
            ),
        ),
        "GET /api/portfolio: 200 response application/json has no example",
    ),
    "example breaks its schema": (
        edit_yaml(
            "openapi.yaml",
            lambda d: post_miners(d)["requestBody"]["content"]["application/json"]["example"].update(
                model_id="Antminer S21"
            ),
        ),
        "request example (application/json) model_id",
    ),
    "missing security": (
        edit_yaml("openapi.yaml", lambda d: d["paths"]["/api/portfolio"]["get"].pop("security")),
        "GET /api/portfolio: no `security`",
    ),
    "unknown scope": (
        edit_yaml("openapi.yaml", lambda d: post_miners(d).update(security=[{"bearerAuth": ["miners:admin"]}])),
        "unknown scopes ['miners:admin']",
    ),
    "write without Idempotency-Key": (
        edit_yaml("openapi.yaml", lambda d: post_miners(d).pop("parameters")),
        "authenticated write without the Idempotency-Key header",
    ),
    "429 without rate-limit headers": (
        edit_yaml(
            "openapi.yaml", lambda d: d["components"]["responses"]["TooManyRequests"]["headers"].pop("Retry-After")
        ),
        "429 lacks headers ['Retry-After']",
    ),
    "error not problem+json": (
        replace_text(
            "openapi.yaml",
            "    NotFound:\n      description: No such resource for the caller (other users' and tenants' resources "
            "are not found either).\n      content:\n        application/problem+json:",
            "    NotFound:\n      description: Not found.\n      content:\n        application/json:",
        ),
        "404 must have exactly one content type, application/problem+json",
    ),
    "invalid OpenAPI": (
        edit_yaml("openapi.yaml", lambda d: d["paths"]["/api/health"]["get"].pop("responses")),
        "invalid OpenAPI",
    ),
    "broken $ref to .avsc": (
        replace_text("asyncapi.yaml", "./avro/miner_added.avsc", "./avro/miner_add.avsc"),
        "./avro/miner_add.avsc does not exist",
    ),
    "AsyncAPI meta-schema violation": (
        replace_text("asyncapi.yaml", "    action: send\n", "    action: publish\n"),
        "invalid AsyncAPI 3.0.0",
    ),
    "channel without partitions": (
        edit_yaml("asyncapi.yaml", lambda d: d["channels"]["minerEvents"]["bindings"]["kafka"].pop("partitions")),
        "channel minerEvents: bindings.kafka.partitions is required",
    ),
    "topic missing": (
        edit_yaml("asyncapi.yaml", lambda d: d["channels"].pop("deadLetters")),
        "no channel for topic events.dlq",
    ),
    "kind on the wrong topic": (
        replace_text("asyncapi.yaml", "      name: miner.added\n", "      name: treasury.added\n"),
        "kind treasury.added belongs on events.treasury",
    ),
    "message example breaks its payload schema": (
        replace_text("asyncapi.yaml", '"hashrate_ths": 200.0, ', ""),
        "envelope payload does not match miner_added.avsc",
    ),
    "avro does not parse": (
        edit_avsc("miner_added.avsc", lambda s: s["fields"][0].update(type="uuid-string")),
        "avro/miner_added.avsc: does not parse",
    ),
    "avro field without doc": (
        edit_avsc("crm_subscription_changed.avsc", lambda s: s["fields"][0].pop("doc")),
        "field 'plan' has no doc",
    ),
    "incompatible avro change: required field without default": (
        edit_avsc("miner_added.avsc", _add_required_field),
        "avro/miner_added.avsc: not BACKWARD compatible",
    ),
    "incompatible avro change: enum symbol removed": (
        edit_avsc("miner_status_changed.avsc", _drop_enum_symbol),
        "avro/miner_status_changed.avsc: not BACKWARD compatible",
    ),
    "incompatible avro change: type narrowed": (
        edit_avsc("dead_letter.avsc", lambda s: s["fields"][2].update(type="int")),
        "avro/dead_letter.avsc: not BACKWARD compatible",
    ),
    "avro schema removed": (
        lambda c: (c / "avro" / "ops_maintenance_scheduled.avsc").unlink(),
        "avro/ops_maintenance_scheduled.avsc: schema removed",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_copy_fails(tmp_path: Path, breakage: str) -> None:
    mutate, expected = BREAKAGES[breakage]
    report = broken(tmp_path, mutate)
    assert not report.ok
    assert any(expected in error for error in report.errors), "\n".join(report.errors)


def test_compatible_avro_change_passes(tmp_path: Path) -> None:
    def add_optional(schema: dict[str, Any]) -> None:
        schema["fields"].append({"name": "rack", "type": ["null", "string"], "default": None, "doc": "Rack."})

    report = broken(tmp_path, edit_avsc("miner_added.avsc", add_optional))
    assert report.errors == []
    assert "avro/miner_added.avsc: changed, BACKWARD compatible" in report.notes


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_git_baseline(tmp_path: Path) -> None:
    """The default gate compares with the last commit; a repository without commits is skipped with a note."""
    contracts = copy_contracts(tmp_path)
    _git(tmp_path, "init", "-q")
    report = Report()
    check_backward_git(contracts, "HEAD", report)
    assert report.ok and any("skipped" in n for n in report.notes)

    _git(tmp_path, "add", "contracts")
    _git(tmp_path, "commit", "-q", "-m", "contracts")
    report = Report()
    check_backward_git(contracts, "HEAD", report)
    assert report.ok and report.notes == []

    edit_avsc("miner_added.avsc", _add_required_field)(contracts)
    report = Report()
    check_backward_git(contracts, "HEAD", report)
    assert any("miner_added.avsc: not BACKWARD compatible" in e for e in report.errors), report.errors


def test_sample_records_cover_every_branch() -> None:
    """The compatibility samples exercise each union branch and enum symbol of the real schemas."""
    schema = json.loads((CONTRACTS_DIR / "avro" / "miner_status_changed.avsc").read_text())
    samples = contracts_check.sample_records(schema)
    assert {s["from_status"] for s in samples} == set(schema["fields"][1]["type"]["symbols"])
    assert {s["reason"] is None for s in samples} == {True, False}
