"""Envelope encryption of stored secrets (miner passwords, exchange API keys) behind a KMS interface.

Each secret is encrypted with its own random 256-bit data key (AES-256-GCM); the data key is stored only
wrapped (encrypted) by a master key that never leaves the KMS. Rotating the master key re-wraps data keys
(`rewrap`), without touching the ciphertexts; a secret keeps naming the master key that wrapped it.

`Kms` is the interface a cloud KMS adapter implements (generate a data key, unwrap it). `LocalKms` implements it
with master keys from the environment, for development and tests:
    KMS_MASTER_KEYS="k2026a:<base64 32 bytes>,k2026b:<base64 32 bytes>"   KMS_ACTIVE_KEY=k2026b
The additional authenticated data (AAD) binds a ciphertext to its owner, e.g. "tenant:t1/miner:<id>/password",
so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KmsError(RuntimeError):
    pass


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    wrapped: bytes
    master_key_id: str


@dataclass(frozen=True)
class SealedSecret:
    master_key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def to_text(self) -> str:
        """One column's worth: v1.<key id>.<wrapped key>.<nonce>.<ciphertext>, URL-safe base64."""
        parts = (self.wrapped_key, self.nonce, self.ciphertext)
        return ".".join(["v1", self.master_key_id, *(base64.urlsafe_b64encode(p).decode() for p in parts)])

    @classmethod
    def from_text(cls, text: str) -> SealedSecret:
        try:
            version, key_id, wrapped, nonce, ciphertext = text.split(".")
        except ValueError:
            raise KmsError("not a sealed secret") from None
        if version != "v1":
            raise KmsError(f"unknown sealed secret version {version!r}")
        decode = base64.urlsafe_b64decode
        return cls(key_id, decode(wrapped), decode(nonce), decode(ciphertext))


class Kms(Protocol):
    def generate_data_key(self) -> DataKey: ...

    def decrypt_data_key(self, wrapped: bytes, master_key_id: str) -> bytes: ...


class LocalKms:
    def __init__(self, master_keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in master_keys:
            raise KmsError(f"active master key {active_key_id!r} is not among {sorted(master_keys)}")
        for key_id, key in master_keys.items():
            if len(key) != 32:
                raise KmsError(f"master key {key_id!r} must be 32 bytes, got {len(key)}")
        self._keys = master_keys
        self.active_key_id = active_key_id

    @classmethod
    def from_env(cls) -> LocalKms:
        spec = os.environ.get("KMS_MASTER_KEYS", "")
        if not spec:
            raise KmsError("KMS_MASTER_KEYS is not set (id:base64-of-32-bytes[,id:...])")
        keys = {}
        for item in spec.split(","):
            key_id, _, b64 = item.strip().partition(":")
            keys[key_id] = base64.b64decode(b64)
        return cls(keys, os.environ.get("KMS_ACTIVE_KEY") or next(iter(keys)))

    def generate_data_key(self) -> DataKey:
        plaintext = AESGCM.generate_key(bit_length=256)
        return DataKey(plaintext, self._wrap(plaintext, self.active_key_id), self.active_key_id)

    def decrypt_data_key(self, wrapped: bytes, master_key_id: str) -> bytes:
        key = self._keys.get(master_key_id)
        if key is None:
            raise KmsError(f"master key {master_key_id!r} is unknown (retired too early?)")
        nonce, body = wrapped[:12], wrapped[12:]
        try:
            return AESGCM(key).decrypt(nonce, body, master_key_id.encode())
        except InvalidTag:
            raise KmsError("data key does not unwrap with its master key") from None

    def _wrap(self, plaintext: bytes, master_key_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._keys[master_key_id]).encrypt(nonce, plaintext, master_key_id.encode())

    def rewrap(self, sealed: SealedSecret) -> SealedSecret:
        """The same secret with its data key wrapped by the active master key (master key rotation)."""
        if sealed.master_key_id == self.active_key_id:
            return sealed
        plaintext_key = self.decrypt_data_key(sealed.wrapped_key, sealed.master_key_id)
        return SealedSecret(self.active_key_id, self._wrap(plaintext_key, self.active_key_id), sealed.nonce,
                            sealed.ciphertext)


def seal(kms: Kms, secret: str, aad: str) -> SealedSecret:
    key = kms.generate_data_key()
    nonce = os.urandom(12)
    ciphertext = AESGCM(key.plaintext).encrypt(nonce, secret.encode(), aad.encode())
    return SealedSecret(key.master_key_id, key.wrapped, nonce, ciphertext)


def unseal(kms: Kms, sealed: SealedSecret, aad: str) -> str:
    key = kms.decrypt_data_key(sealed.wrapped_key, sealed.master_key_id)
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad.encode()).decode()
    except InvalidTag:
        raise KmsError("secret does not decrypt: wrong owner (AAD) or tampered") from None
