"""Envelope encryption of stored secrets (miner passwords, exchange API keys) behind a KMS interface.

Each secret is encrypted with its own random 256-bit data key (AES-256-GCM); the data key is stored only
wrapped (encrypted) by a master key that never leaves the KMS. Rotating the master key re-wraps data keys
(`rewrap`), without touching the ciphertexts; a secret keeps naming the master key that wrapped it.

`Kms` is the interface a cloud KMS adapter implements (generate a data key, unwrap it, rewrap it under the
active master key). Two local providers implement it, for development and tests:

- `KeyFileKms` (the default): master keys in a JSON key file, `KMS_KEY_FILE` (default
  `.stack/kms/master-keys.json`, created with mode 0600 on first use), re-read whenever it changes, so
  `make rotate-master-key` (tools/rotate_master_key.py) can add a key and make it active while the API serves:
      {"active": "mk-20261201-0001", "keys": {"mk-20261201-0001": "<base64 of 32 bytes>"}}
- `LocalKms`: master keys from the environment (when `KMS_MASTER_KEYS` is set):
      KMS_MASTER_KEYS="k2026a:<base64 32 bytes>,k2026b:<base64 32 bytes>"   KMS_ACTIVE_KEY=k2026b

AWS KMS and Vault Transit providers have the same shape (docs/security.md): generate_data_key is
GenerateDataKey (KeySpec AES_256) / `transit/datakey/plaintext/<key>`, decrypt_data_key is Decrypt /
`transit/decrypt/<key>`, rewrap is ReEncrypt / `transit/rewrap/<key>`; the master key never leaves the KMS.
The additional authenticated data (AAD) binds a ciphertext to its owner, e.g. "tenant:t1/miner:<id>/password",
so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
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
    @property
    def active_key_id(self) -> str: ...

    def generate_data_key(self) -> DataKey: ...

    def decrypt_data_key(self, wrapped: bytes, master_key_id: str) -> bytes: ...

    def rewrap(self, sealed: SealedSecret) -> SealedSecret: ...


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

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

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


DEFAULT_KEY_FILE = Path(__file__).resolve().parents[2] / ".stack" / "kms" / "master-keys.json"


def new_master_key_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return f"mk-{stamp}-{secrets.token_hex(3)}"


def read_key_file(path: Path) -> tuple[dict[str, bytes], str]:
    try:
        doc = json.loads(path.read_text())
        keys = {key_id: base64.b64decode(b64) for key_id, b64 in doc["keys"].items()}
        return keys, doc["active"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KmsError(f"master key file {path} is unreadable: {exc}") from None


def write_key_file(path: Path, keys: dict[str, bytes], active: str) -> None:
    """Replace the key file atomically (write a sibling, fsync, rename), readable by its owner only."""
    if active not in keys:
        raise KmsError(f"active master key {active!r} is not among {sorted(keys)}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {"active": active, "keys": {k: base64.b64encode(v).decode() for k, v in sorted(keys.items())}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def ensure_key_file(path: Path) -> None:
    """Create the key file with one fresh master key unless it exists (first run of a dev system)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = new_master_key_id()
    doc = {"active": key_id, "keys": {key_id: base64.b64encode(os.urandom(32)).decode()}}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)


class KeyFileKms:
    """LocalKms over a key file, re-read when the file changes (a rotation adds a key and switches `active`).

    An unknown key id also triggers a re-read before it is refused: a record wrapped by a key that another
    process has just added (the rotation tool) still opens here.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._kms: LocalKms | None = None

    def _current(self, force: bool = False) -> LocalKms:
        with self._lock:
            try:
                st = self.path.stat()
            except OSError as exc:
                raise KmsError(f"master key file {self.path} is missing: {exc}") from None
            stamp = (st.st_mtime_ns, st.st_size)
            if force or self._kms is None or stamp != self._stamp:
                keys, active = read_key_file(self.path)
                self._kms = LocalKms(keys, active)
                self._stamp = stamp
            return self._kms

    @property
    def active_key_id(self) -> str:
        return self._current().active_key_id

    @property
    def key_ids(self) -> list[str]:
        return self._current().key_ids

    def generate_data_key(self) -> DataKey:
        return self._current().generate_data_key()

    def decrypt_data_key(self, wrapped: bytes, master_key_id: str) -> bytes:
        kms = self._current()
        if master_key_id not in kms.key_ids:
            kms = self._current(force=True)
        return kms.decrypt_data_key(wrapped, master_key_id)

    def rewrap(self, sealed: SealedSecret) -> SealedSecret:
        kms = self._current()
        if sealed.master_key_id not in kms.key_ids:
            kms = self._current(force=True)
        return kms.rewrap(sealed)


_kms: Kms | None = None
_kms_lock = threading.Lock()


def get_kms() -> Kms:
    """The process's KMS: LocalKms when KMS_MASTER_KEYS is set, else the key file (created on first use)."""
    global _kms
    with _kms_lock:
        if _kms is None:
            if os.environ.get("KMS_MASTER_KEYS"):
                _kms = LocalKms.from_env()
            else:
                path = Path(os.environ.get("KMS_KEY_FILE") or DEFAULT_KEY_FILE)
                ensure_key_file(path)
                _kms = KeyFileKms(path)
        return _kms


def reset_kms() -> None:
    """Forget the process's KMS (tests that point KMS_KEY_FILE elsewhere)."""
    global _kms
    with _kms_lock:
        _kms = None


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
