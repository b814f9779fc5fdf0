"""Envelope encryption: round trip, owner binding, tampering, master key rotation."""

from __future__ import annotations

import base64
import os

import pytest

from app.adapters.kms import KmsError, LocalKms, SealedSecret, seal, unseal

K1, K2 = os.urandom(32), os.urandom(32)
AAD = "tenant:t1/miner:m1/password"


def test_a_secret_round_trips_and_its_text_form_hides_it():
    kms = LocalKms({"k1": K1}, "k1")
    sealed = seal(kms, "hunter2", AAD)
    text = sealed.to_text()
    assert "hunter2" not in text and text.startswith("v1.k1.")
    assert unseal(kms, SealedSecret.from_text(text), AAD) == "hunter2"


def test_each_secret_gets_its_own_data_key():
    kms = LocalKms({"k1": K1}, "k1")
    a, b = seal(kms, "same", AAD), seal(kms, "same", AAD)
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext


def test_a_ciphertext_moved_to_another_owner_does_not_decrypt():
    kms = LocalKms({"k1": K1}, "k1")
    sealed = seal(kms, "api-key", "tenant:t1/exchange:e1/api_key")
    with pytest.raises(KmsError, match="wrong owner"):
        unseal(kms, sealed, "tenant:t2/exchange:e1/api_key")


def test_tampering_is_detected():
    kms = LocalKms({"k1": K1}, "k1")
    sealed = seal(kms, "secret", AAD)
    flipped = SealedSecret(sealed.master_key_id, sealed.wrapped_key, sealed.nonce,
                           bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    with pytest.raises(KmsError):
        unseal(kms, flipped, AAD)


def test_rotation_rewraps_data_keys_and_the_old_key_can_then_retire():
    old = LocalKms({"k1": K1}, "k1")
    sealed = seal(old, "secret", AAD)
    both = LocalKms({"k1": K1, "k2": K2}, "k2")
    assert unseal(both, sealed, AAD) == "secret"  # still readable during the rotation
    rewrapped = both.rewrap(sealed)
    assert rewrapped.master_key_id == "k2" and rewrapped.ciphertext == sealed.ciphertext
    new_only = LocalKms({"k2": K2}, "k2")
    assert unseal(new_only, rewrapped, AAD) == "secret"
    with pytest.raises(KmsError, match="unknown"):
        unseal(new_only, sealed, AAD)


def test_configuration_errors_are_clear(monkeypatch):
    with pytest.raises(KmsError, match="32 bytes"):
        LocalKms({"k1": b"short"}, "k1")
    with pytest.raises(KmsError, match="active master key"):
        LocalKms({"k1": K1}, "k9")
    monkeypatch.setenv("KMS_MASTER_KEYS", f"a:{base64.b64encode(K1).decode()},b:{base64.b64encode(K2).decode()}")
    monkeypatch.setenv("KMS_ACTIVE_KEY", "b")
    assert LocalKms.from_env().active_key_id == "b"
    monkeypatch.delenv("KMS_MASTER_KEYS")
    with pytest.raises(KmsError, match="KMS_MASTER_KEYS"):
        LocalKms.from_env()
