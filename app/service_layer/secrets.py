"""Sealed secrets: miners' pool passwords and users' exchange API keys, stored only as envelope ciphertext.

A record is sealed with its own AES-256-GCM data key, wrapped by the KMS master key whose id is stored beside
the ciphertext (app/adapters/kms.py; docs/security.md). The additional authenticated data names the row the
ciphertext belongs to, so a ciphertext copied onto another row does not decrypt. Plaintexts exist only in the
memory of the request that seals them and of the trade that unseals them; they are never logged, audited,
cached or put on the bus. Responses and the page see only hints (`password_hint`, `api_key_hint`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from app.adapters.kms import Kms, SealedSecret, get_kms, seal, unseal
from app.config import get_settings

MASK = "••••••"


@dataclass(frozen=True)
class SealedColumns:
    """A SealedSecret as the four columns of miner_pools / exchange_credentials."""

    master_key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    @classmethod
    def of(cls, sealed: SealedSecret) -> SealedColumns:
        return cls(sealed.master_key_id, sealed.wrapped_key, sealed.nonce, sealed.ciphertext)

    @classmethod
    def from_row(cls, row: Any) -> SealedColumns:
        m = row._mapping
        return cls(m["master_key_id"], bytes(m["wrapped_key"]), bytes(m["nonce"]), bytes(m["ciphertext"]))

    def sealed(self) -> SealedSecret:
        return SealedSecret(self.master_key_id, self.wrapped_key, self.nonce, self.ciphertext)

    def params(self) -> dict[str, Any]:
        return {"master_key_id": self.master_key_id, "wrapped_key": self.wrapped_key, "nonce": self.nonce,
                "ciphertext": self.ciphertext}


def fingerprint(secret: str) -> str:
    """What an Idempotency-Key's request hash sees of a secret: a keyed HMAC, so the stored hash of a request
    cannot be used to test guesses of the secret without the server's key."""
    key = get_settings().jwt_secret.encode()
    return "hmac:" + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def pool_aad(tenant_id: str, miner_id: str) -> str:
    return f"tenant:{tenant_id}/miner:{miner_id}/pool-password"


def exchange_aad(tenant_id: str, user_id: str, exchange: str) -> str:
    return f"tenant:{tenant_id}/user:{user_id}/exchange:{exchange}/api-credentials"


def password_hint(password: str) -> str:
    """The last two characters of a password of 8 or more, else nothing but the mask."""
    return MASK + password[-2:] if len(password) >= 8 else MASK


def api_key_hint(api_key: str) -> str:
    """The last characters of a key: at most 8 and never more than a third of it."""
    shown = min(8, len(api_key) // 3)
    return "…" + api_key[-shown:] if shown else "…"


def seal_pool_password(tenant_id: str, miner_id: str, password: str, kms: Kms | None = None) -> SealedColumns:
    return SealedColumns.of(seal(kms or get_kms(), password, pool_aad(tenant_id, miner_id)))


def unseal_pool_password(tenant_id: str, miner_id: str, cols: SealedColumns, kms: Kms | None = None) -> str:
    return unseal(kms or get_kms(), cols.sealed(), pool_aad(tenant_id, miner_id))


@dataclass(frozen=True)
class ExchangeKey:
    """Exchange credentials in memory, for the length of one trade. repr never shows them."""

    exchange: str
    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return f"ExchangeKey(exchange={self.exchange!r}, api_key={api_key_hint(self.api_key)!r}, api_secret=***)"


def seal_exchange_key(tenant_id: str, user_id: str, key: ExchangeKey, kms: Kms | None = None) -> SealedColumns:
    record = json.dumps({"api_key": key.api_key, "api_secret": key.api_secret})
    return SealedColumns.of(seal(kms or get_kms(), record, exchange_aad(tenant_id, user_id, key.exchange)))


def unseal_exchange_key(tenant_id: str, user_id: str, exchange: str, cols: SealedColumns,
                        kms: Kms | None = None) -> ExchangeKey:
    record = json.loads(unseal(kms or get_kms(), cols.sealed(), exchange_aad(tenant_id, user_id, exchange)))
    return ExchangeKey(exchange, record["api_key"], record["api_secret"])
