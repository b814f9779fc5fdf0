"""JWT encode/decode per the house conventions, and every way a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.adapters.tokens import (
    AUDIENCE,
    ISSUER,
    Keyring,
    TokenError,
    decode_token,
    encode_token,
    parse_keyring,
)

SECRET = "unit-test-secret-" + "0123456789abcdef" * 3  # 64 bytes: PyJWT warns below that for HS512
RING = Keyring({"default": SECRET}, "default")
ROOT = Path(__file__).resolve().parents[3]


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": "u1", "tenant_id": "t1", "scope": "miners:write portfolio:read",
                               "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forge(payload: dict[str, object], key: str = SECRET, alg: str = "HS256", **headers: object) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers=headers or None)


def reason(token: str, ring: Keyring = RING) -> str:
    with pytest.raises(TokenError) as info:
        decode_token(token, keyring=ring)
    return info.value.code


def test_round_trip() -> None:
    token = encode_token("u1", "t1", "miners:write portfolio:read miners:write", keyring=RING, token_id="j1")
    p = decode_token(token, keyring=RING)
    assert (p.user_id, p.tenant_id, p.scopes, p.token_id) == (
        "u1", "t1", frozenset({"miners:write", "portfolio:read"}), "j1")
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert payload["scope"] == "miners:write portfolio:read"  # space-separated, deduplicated
    assert payload["iss"] == "hashinsight" and payload["aud"] == "hashinsight-api"
    assert payload["exp"] - payload["iat"] == 3600
    assert jwt.get_unverified_header(token)["kid"] == "default"


def test_hand_signed_token_without_kid_is_checked_against_the_active_key() -> None:
    assert decode_token(forge(claims()), keyring=RING).user_id == "u1"


def test_expired() -> None:
    assert reason(encode_token("u1", "t1", "", keyring=RING, ttl_seconds=60, now=time.time() - 120)) == "expired"


def test_expiry_within_leeway_is_accepted() -> None:
    # expired 10 s ago, leeway 30 s
    token = forge(claims(iat=int(time.time()) - 70, exp=int(time.time()) - 10))
    assert decode_token(token, keyring=RING).user_id == "u1"


def test_future_iat_beyond_leeway() -> None:
    assert reason(encode_token("u1", "t1", "", keyring=RING, now=time.time() + 120)) == "immature"
    # within the 30 s leeway it passes (clock skew between hosts)
    decode_token(encode_token("u1", "t1", "", keyring=RING, now=time.time() + 10), keyring=RING)


def test_wrong_audience_and_issuer() -> None:
    assert reason(forge(claims(aud="someone-else"))) == "audience"
    assert reason(forge(claims(iss="evil"))) == "issuer"


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "tenant_id", "scope"])
def test_missing_claims(missing: str) -> None:
    payload = claims()
    del payload[missing]
    assert reason(forge(payload)) == "missing_claim"


def test_alg_none() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    assert reason(f"{header.decode()}.{body.decode()}.") == "algorithm"


def test_hs512_is_refused_even_with_the_right_key() -> None:
    assert reason(forge(claims(), alg="HS512")) == "algorithm"


def test_rs256_is_refused_and_no_key_confusion() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reason(forge(claims(), key=private, alg="RS256")) == "algorithm"  # type: ignore[arg-type]
    # The classic confusion: the attacker HMAC-signs with the server's *public* key and says RS256 (or HS256),
    # hoping the verifier feeds the public key to HMAC. The header check refuses it before any key is used.
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    ring = Keyring({"default": pem.decode()}, "default")  # even if someone put the PEM in the keyring
    for alg, code in (("RS256", "algorithm"), ("HS256", "server_key")):
        head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims()).encode())
        sig = _b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
        assert reason(f"{head}.{body}.{sig}", ring) == code


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_tampered_signature_and_payload() -> None:
    token = encode_token("u1", "t1", "miners:read", keyring=RING)
    head, body, sig = token.split(".")
    assert reason(f"{head}.{body}.{sig[:-4]}AAAA") == "signature"
    escalated = base64.urlsafe_b64encode(json.dumps(claims(scope="treasury:trade")).encode()).rstrip(b"=")
    assert reason(f"{head}.{escalated.decode()}.{sig}") == "signature"
    assert reason(forge(claims(), key="another-secret-0123456789abcdef-xyz")) == "signature"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 9000])
def test_malformed(garbage: str) -> None:
    assert reason(garbage) == "malformed"


def test_unknown_kid() -> None:
    assert reason(forge(claims(), kid="k9")) == "unknown_kid"


def test_rotation() -> None:
    old_secret, new_secret = "old-secret-0123456789abcdef-0123456", "new-secret-0123456789abcdef-0123456"
    before = parse_keyring(f"k1:{old_secret}", "", "unused")
    old_token = encode_token("u1", "t1", "", keyring=before)
    assert jwt.get_unverified_header(old_token)["kid"] == "k1"

    during = parse_keyring(f"k1:{old_secret},k2:{new_secret}", "k2", "unused")
    new_token = encode_token("u1", "t1", "", keyring=during)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"  # the new key signs
    assert decode_token(old_token, keyring=during).user_id == "u1"  # the old key still verifies
    assert decode_token(new_token, keyring=during).user_id == "u1"
    # a kid-less token is checked against the active key only, never the others in turn
    assert reason(forge(claims(), key=old_secret), during) == "signature"

    after = parse_keyring(f"k2:{new_secret}", "", "unused")
    assert reason(old_token, after) == "unknown_kid"
    assert decode_token(new_token, keyring=after).user_id == "u1"


def test_keyring_parsing() -> None:
    assert parse_keyring("", "", SECRET) == Keyring({"default": SECRET}, "default")
    ring = parse_keyring(" a:s1:with:colons , b:s2 ,", "", "x")
    assert (dict(ring.keys), ring.active_kid) == ({"a": "s1:with:colons", "b": "s2"}, "a")
    for bad in ("a", "a:", ":s", "a:1,a:2"):
        with pytest.raises(ValueError):
            parse_keyring(bad, "", "x")
    with pytest.raises(ValueError, match="active kid"):
        parse_keyring("a:s1", "zz", "x")


def test_keyring_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.delenv("JWT_KEYS", raising=False)
    monkeypatch.delenv("JWT_ACTIVE_KID", raising=False)
    assert decode_token(forge(claims())).user_id == "u1"
    monkeypatch.setenv("JWT_KEYS", "k1:" + "1" * 40 + ",k2:" + "2" * 40)
    monkeypatch.setenv("JWT_ACTIVE_KID", "k2")
    assert jwt.get_unverified_header(encode_token("u1", "t1", ""))["kid"] == "k2"


@pytest.mark.parametrize("value", ["", "   ", "a\nb", "x" * 200])
def test_bad_identity_claims(value: str) -> None:
    assert reason(forge(claims(sub=value))) == "invalid_claim"
    assert reason(forge(claims(tenant_id=value))) == "invalid_claim"


def test_scope_must_be_a_string() -> None:
    assert reason(forge(claims(scope=["miners:read"]))) == "invalid_claim"


def test_cli_prints_only_a_valid_token(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"PATH": "/usr/bin:/bin", "JWT_SECRET": SECRET}
    out = subprocess.run(
        [sys.executable, "-m", "tools.token", "--sub", "u1", "--tenant", "t1", "--scopes",
         "miners:write portfolio:read", "--ttl", "120"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout
    assert out.count("\n") == 1
    p = decode_token(out.strip(), keyring=RING)
    assert (p.user_id, p.tenant_id, p.scopes) == ("u1", "t1", frozenset({"miners:write", "portfolio:read"}))
    failed = subprocess.run([sys.executable, "-m", "tools.token", "--sub", "u1", "--tenant", "t1", "--kid", "nope"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert failed.returncode == 2 and "nope" in failed.stderr
