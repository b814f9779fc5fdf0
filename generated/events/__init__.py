# DO NOT EDIT: `make generate` (tools/generate.py) writes this file from contracts/asyncapi.yaml and contracts/avro/.

"""Event models by kind.

EventEnvelope is the value of every events.* record; its `payload` is JSON text that EVENT_MODELS[kind]
validates. DeadLetter is the value of events.dlq records. Unknown payload fields are ignored (pydantic's
default), so producers can add fields (with Avro defaults) before consumers know them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from .crm_subscription_changed import CrmSubscriptionChanged
from .dead_letter import DeadLetter
from .event_envelope import EventEnvelope
from .market_snapshot_recorded import MarketSnapshotRecorded
from .miner_added import MinerAdded
from .miner_bulk_imported import MinerBulkImported
from .miner_status_changed import MinerStatusChanged
from .miner_updated import MinerUpdated
from .ops_maintenance_scheduled import OpsMaintenanceScheduled
from .treasury_credentials_updated import TreasuryCredentialsUpdated
from .treasury_trade_executed import TreasuryTradeExecuted

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
ENVELOPE_SCHEMA = CONTRACTS_DIR / "avro" / "event_envelope.avsc"
DEAD_LETTER_SCHEMA = CONTRACTS_DIR / "avro" / "dead_letter.avsc"

# Event kind -> pydantic model of its payload.
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "crm.subscription_changed": CrmSubscriptionChanged,
    "market.snapshot_recorded": MarketSnapshotRecorded,
    "miner.added": MinerAdded,
    "miner.bulk_imported": MinerBulkImported,
    "miner.status_changed": MinerStatusChanged,
    "miner.updated": MinerUpdated,
    "ops.maintenance_scheduled": OpsMaintenanceScheduled,
    "treasury.credentials_updated": TreasuryCredentialsUpdated,
    "treasury.trade_executed": TreasuryTradeExecuted,
}

# Event kind -> Avro schema of its payload.
EVENT_SCHEMAS: dict[str, Path] = {
    "crm.subscription_changed": CONTRACTS_DIR / "avro" / "crm_subscription_changed.avsc",
    "market.snapshot_recorded": CONTRACTS_DIR / "avro" / "market_snapshot_recorded.avsc",
    "miner.added": CONTRACTS_DIR / "avro" / "miner_added.avsc",
    "miner.bulk_imported": CONTRACTS_DIR / "avro" / "miner_bulk_imported.avsc",
    "miner.status_changed": CONTRACTS_DIR / "avro" / "miner_status_changed.avsc",
    "miner.updated": CONTRACTS_DIR / "avro" / "miner_updated.avsc",
    "ops.maintenance_scheduled": CONTRACTS_DIR / "avro" / "ops_maintenance_scheduled.avsc",
    "treasury.credentials_updated": CONTRACTS_DIR / "avro" / "treasury_credentials_updated.avsc",
    "treasury.trade_executed": CONTRACTS_DIR / "avro" / "treasury_trade_executed.avsc",
}

# Event kind -> the topic it travels on (the AsyncAPI channel that lists it).
TOPIC_OF_KIND: dict[str, str] = {
    "crm.subscription_changed": "events.crm",
    "market.snapshot_recorded": "events.market",
    "miner.added": "events.miner",
    "miner.bulk_imported": "events.miner",
    "miner.status_changed": "events.miner",
    "miner.updated": "events.miner",
    "ops.maintenance_scheduled": "events.ops",
    "treasury.credentials_updated": "events.treasury",
    "treasury.trade_executed": "events.treasury",
}


def model_for(kind: str) -> type[BaseModel]:
    """The payload model of `kind`; KeyError naming the known kinds otherwise."""
    try:
        return EVENT_MODELS[kind]
    except KeyError:
        raise KeyError(f"unknown event kind {kind!r}; known: {', '.join(sorted(EVENT_MODELS))}") from None


__all__ = [
    "CrmSubscriptionChanged",
    "DeadLetter",
    "EVENT_MODELS",
    "EVENT_SCHEMAS",
    "EventEnvelope",
    "MarketSnapshotRecorded",
    "MinerAdded",
    "MinerBulkImported",
    "MinerStatusChanged",
    "MinerUpdated",
    "OpsMaintenanceScheduled",
    "TOPIC_OF_KIND",
    "TreasuryCredentialsUpdated",
    "TreasuryTradeExecuted",
    "model_for",
]
