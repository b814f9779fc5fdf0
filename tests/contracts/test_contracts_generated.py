"""generated/ and docs/api-examples.md are reproducible from contracts/ and agree with its examples."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

import generated.api as api
from generated.events import EVENT_MODELS, TOPIC_OF_KIND, DeadLetter, EventEnvelope, model_for
from generated.routes import OPERATIONS
from tools import api_docs, generate
from tools.contracts_check import CONTRACTS_DIR, REPO_ROOT, iter_operations, resolve_ref

OPENAPI = yaml.safe_load((CONTRACTS_DIR / "openapi.yaml").read_text())
ASYNCAPI = yaml.safe_load((CONTRACTS_DIR / "asyncapi.yaml").read_text())


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True)


# --------------------------------------------------------------------------------------------- generated/


def test_generate_reproduces_generated_dir_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = run_tool("tools.generate", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert generate.differences(out, generate.GENERATED_DIR) == [], "generated/ is stale: run `make generate`"


def test_generate_check_flags_a_stale_tree(tmp_path: Path) -> None:
    stale = tmp_path / "generated"
    shutil.copytree(generate.GENERATED_DIR, stale, ignore=shutil.ignore_patterns("__pycache__"))
    assert run_tool("tools.generate", "--check", "--out", str(stale)).returncode == 0
    api_file = stale / "api.py"
    api_file.write_text(api_file.read_text().replace("max_length=100", "max_length=101", 1))
    (stale / "leftover.py").write_text("")
    result = run_tool("tools.generate", "--check", "--out", str(stale))
    assert result.returncode == 1
    assert "api.py" in result.stderr and "not generated (stale): leftover.py" in result.stderr


def test_contract_change_changes_generated(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    spec = contracts / "openapi.yaml"
    spec.write_text(spec.read_text().replace("operationId: get_portfolio", "operationId: read_portfolio"))
    result = run_tool("tools.generate", "--check", "--contracts", str(contracts))
    assert result.returncode == 1
    assert '+    "read_portfolio": Operation(' in result.stderr


def test_route_table_matches_spec() -> None:
    ops = list(iter_operations(OPENAPI))
    assert [o.operation_id for o in ops] == list(OPERATIONS)
    for op in ops:
        entry = OPERATIONS[op.operation_id]
        assert (entry.method, entry.path, entry.module) == (op.method.upper(), op.path, op.module)
        assert entry.public == (op.spec["security"] == [])


def test_brief_operations_are_all_there() -> None:
    wanted = {
        ("POST", "/api/miners"): "create_miner",
        ("PATCH", "/api/miners/{id}/status"): "change_miner_status",
        ("POST", "/api/miners/bulk"): "bulk_import_miners",
        ("GET", "/api/intelligence/forecast"): "get_forecast",
        ("POST", "/api/treasury/execute"): "execute_trade",
        ("GET", "/api/health"): "get_health",
        ("GET", "/analytics/main"): "analytics_main",
        ("GET", "/api/miners"): "list_miners",
        ("GET", "/api/miners/{id}"): "get_miner",
        ("GET", "/api/portfolio"): "get_portfolio",
        ("GET", "/api/miner-models"): "list_miner_models",
        ("GET", "/analytics/login"): "login_form",
        ("POST", "/analytics/login"): "login",
        ("GET", "/metrics"): "get_metrics",
        ("GET", "/analytics/stream"): "analytics_stream",
        ("POST", "/analytics/miners"): "add_miner_form",
        ("POST", "/analytics/miners/{id}/status"): "change_miner_status_form",
        ("PATCH", "/api/miners/{id}"): "update_miner",
        ("PUT", "/api/treasury/credentials"): "put_treasury_credentials",
        ("POST", "/api/market/snapshots"): "record_market_snapshot",
        ("POST", "/api/ops/maintenance"): "schedule_maintenance",
        ("GET", "/api/ops/schedule"): "get_ops_schedule",
        ("PUT", "/api/subscription"): "change_subscription",
    }
    assert {(o.method, o.path): o.operation_id for o in OPERATIONS.values()} == wanted


# --------------------------------------------------------------------------------------------- models vs examples


def _schema_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None


def _json_examples() -> list[tuple[str, str, Any]]:
    """(where, schema name, example) for every JSON request/response example naming a component schema."""
    found = []
    for op in iter_operations(OPENAPI):
        bodies = []
        if "requestBody" in op.spec:
            bodies.append(("request", resolve_ref(OPENAPI, op.spec["requestBody"])))
        for status, response in op.spec["responses"].items():
            bodies.append((str(status), resolve_ref(OPENAPI, response)))
        for label, body in bodies:
            for media_type, media in (body.get("content") or {}).items():
                name = _schema_name(media.get("schema", {}))
                if name and "example" in media and "json" in media_type:
                    found.append((f"{op.operation_id} {label}", name, media["example"]))
    return found


@pytest.mark.parametrize(
    ("where", "schema", "example"), _json_examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_generated_api_models_accept_spec_examples(where: str, schema: str, example: Any) -> None:
    getattr(api, schema).model_validate(example)


def test_generated_api_models_enforce_bounds() -> None:
    with pytest.raises(pydantic.ValidationError):
        api.MinerCreate.model_validate({"model_id": "antminer-s21", "hashrate_ths": 0})
    with pytest.raises(pydantic.ValidationError):
        api.MinerCreate.model_validate({"model_id": "antminer-s21", "unknown": 1})
    assert api.MinerCreate.model_validate({"model_id": "antminer-s21"}).status == "active"
    # The bulk limit is the contract's maxItems (answered with 413 by the body validator): the model holds it too.
    api.BulkImportRequest.model_validate({"items": [{"model_id": "antminer-s21"}] * 10_000})
    with pytest.raises(pydantic.ValidationError):
        api.BulkImportRequest.model_validate({"items": [{"model_id": "antminer-s21"}] * 10_001})


def _message_examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for message in ASYNCAPI["components"]["messages"].values():
        for example in message.get("examples", []):
            out.append((message["name"], example))
    return out


@pytest.mark.parametrize(("name", "example"), _message_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_generated_event_models_accept_asyncapi_examples(name: str, example: dict[str, Any]) -> None:
    value = example["payload"]
    if name == "dead_letter":
        DeadLetter.model_validate(value)
        return
    envelope = EventEnvelope.model_validate(value)
    assert envelope.kind == name
    model_for(envelope.kind).model_validate(json.loads(envelope.payload))


def test_event_registry_matches_asyncapi() -> None:
    kinds = {}
    for channel in ASYNCAPI["channels"].values():
        for ref in channel["messages"].values():
            message = resolve_ref(ASYNCAPI, ref)
            if "x-payload-schema" in message:
                kinds[message["name"]] = channel["address"]
    assert kinds == TOPIC_OF_KIND
    assert set(EVENT_MODELS) == set(kinds)
    assert {
        "miner.added",
        "miner.status_changed",
        "miner.bulk_imported",
        "treasury.trade_executed",
    } <= set(EVENT_MODELS)
    with pytest.raises(KeyError, match="unknown event kind"):
        model_for("miner.exploded")


def test_payload_models_reject_bad_payloads() -> None:
    with pytest.raises(pydantic.ValidationError):
        EVENT_MODELS["miner.status_changed"].model_validate(
            {"miner_id": "not-a-uuid", "from_status": "active", "to_status": "idle"}
        )
    with pytest.raises(pydantic.ValidationError):
        EVENT_MODELS["miner.added"].model_validate({"miner_id": "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01"})


# --------------------------------------------------------------------------------------------- docs


def test_api_examples_doc_is_up_to_date() -> None:
    result = run_tool("tools.api_docs", "--check")
    assert result.returncode == 0, result.stderr + "\nrun `make docs`"


def test_api_examples_doc_has_one_curl_per_operation() -> None:
    text = api_docs.OUT_FILE.read_text()
    blocks = re.findall(r"```bash\n(curl .*?)\n```", text, flags=re.S)
    assert len(blocks) == len(OPERATIONS)
    for op in OPERATIONS.values():
        assert f"## `{op.operation_id}`: {op.method} {op.path}" in text
    for block in blocks:
        if "Bearer" in block:
            assert '"Authorization: Bearer $TOKEN"' in block


def test_api_examples_check_flags_stale_doc(tmp_path: Path) -> None:
    stale = tmp_path / "api-examples.md"
    stale.write_text(api_docs.OUT_FILE.read_text().replace("antminer-s21", "antminer-s9", 1))
    assert run_tool("tools.api_docs", "--check", "--out", str(stale)).returncode == 1


def test_contracts_readme_indexes_every_operation_topic_and_kind() -> None:
    """contracts/README.md is the newcomer's index; it must not miss anything the contracts define."""
    readme = (CONTRACTS_DIR / "README.md").read_text()
    missing = [f"`{op_id}`" for op_id in OPERATIONS if f"`{op_id}`" not in readme]
    for channel in ASYNCAPI["channels"].values():
        if f"`{channel['address']}`" not in readme:
            missing.append(channel["address"])
        for ref in channel["messages"].values():
            if f"`{resolve_ref(ASYNCAPI, ref)['name']}`" not in readme:
                missing.append(resolve_ref(ASYNCAPI, ref)["name"])
    assert missing == []
