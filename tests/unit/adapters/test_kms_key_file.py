"""The key-file KMS: created on first use, re-read when rotated, old records still open."""

from __future__ import annotations

import os
import stat

import pytest

from app.adapters.kms import KeyFileKms, KmsError, ensure_key_file, read_key_file, seal, unseal, write_key_file
from app.entrypoints.http.validation import redact, secret_values
from app.service_layer.secrets import api_key_hint, password_hint


def test_the_key_file_is_created_private_and_rotation_is_picked_up(tmp_path):
    path = tmp_path / "kms" / "keys.json"
    ensure_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kms = KeyFileKms(path)
    first = kms.active_key_id
    old = seal(kms, "hunter2-secret", "aad")
    keys, _ = read_key_file(path)
    write_key_file(path, {**keys, "mk-new": os.urandom(32)}, "mk-new")
    assert kms.active_key_id == "mk-new"
    assert unseal(kms, old, "aad") == "hunter2-secret" and old.master_key_id == first
    rewrapped = kms.rewrap(old)
    assert rewrapped.master_key_id == "mk-new" and rewrapped.ciphertext == old.ciphertext
    assert unseal(kms, rewrapped, "aad") == "hunter2-secret"
    write_key_file(path, {"mk-new": read_key_file(path)[0]["mk-new"]}, "mk-new")  # the old key retired
    with pytest.raises(KmsError):
        unseal(kms, old, "aad")


def test_hints_show_little_and_validation_messages_hide_secrets():
    assert password_hint("short") == "••••••" and password_hint("longer-password") == "••••••rd"
    assert api_key_hint("abcdefghijklmnopqrstuvwx") == "…qrstuvwx" and api_key_hint("abcdefghi") == "…ghi"
    body = {"exchange": "paper", "api_key": "k3y with space", "pool": {"password": "p'w"}}
    hidden = secret_values(body)
    assert set(hidden) == {"k3y with space", "p'w"}
    assert redact("'k3y with space' does not match '^[!-~]+$'", hidden) == "'***' does not match '^[!-~]+$'"
    assert redact('"p\'w" is too short', hidden) == '"***" is too short'
