"""JWTs per the house conventions: HS256, claims sub / tenant_id / scope / iat / exp / iss / aud.

    iss = "hashinsight", aud = "hashinsight-api", scope = space-separated scopes, jti = token id (we mint one).

Verification is strict: the algorithm is pinned to HS256 (the header is checked before anything else, so
alg=none, HS512 and RS256/HS256 key confusion are all refused), and signature, exp, iat, iss and aud are
verified with a 30 s leeway for clock skew; sub, tenant_id and scope must be present.

Key rotation without downtime: keys form a keyring by `kid`.

- JWT_KEYS = "kid1:secret1,kid2:secret2" (a secret may contain ':' but not ','); JWT_ACTIVE_KID picks the
  signing key (default: the first kid listed). Unset JWT_KEYS means the keyring {"default": JWT_SECRET}.
- Tokens we mint carry their `kid` in the header; a token is verified with the key its kid names, and a kid
  not in the keyring is refused. Rotate by adding the new key and making it active, then removing the old
  one once every token it signed has expired (at most the longest TTL you issue).
- A token without `kid` (e.g. signed by hand with JWT_SECRET) is checked against the *active* key only: we
  will not try every key in turn, which would turn a retired key back into a valid one.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from app.adapters import cache_lifetime
from app.config import Settings, get_settings

ALGORITHM = "HS256"
ISSUER = "hashinsight"
AUDIENCE = "hashinsight-api"
LEEWAY_SECONDS = 30
DEFAULT_TTL_SECONDS = 3600
DEFAULT_KID = "default"
MAX_TOKEN_LENGTH = 8192  # a bearer token is a header; refuse megabyte "tokens" before decoding them
MAX_USER_ID_LENGTH = 128  # Portfolio.user_id maxLength in contracts/openapi.yaml
MAX_TENANT_ID_LENGTH = 64  # Miner.tenant_id maxLength

log = logging.getLogger(__name__)


class TokenError(Exception):
    """Any reason a token is not accepted. `code` is stable (for logs/metrics), `reason` is for humans."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    user_id: str
    tenant_id: str
    scopes: frozenset[str]
    token_id: str | None = None

    def missing_scopes(self, required: Iterable[str]) -> list[str]:
        return sorted(set(required) - self.scopes)

    def has_scopes(self, required: Iterable[str]) -> bool:
        return not self.missing_scopes(required)


@dataclass(frozen=True)
class Keyring:
    keys: Mapping[str, str]
    active_kid: str

    def __post_init__(self) -> None:
        if self.active_kid not in self.keys:
            raise ValueError(f"active kid {self.active_kid!r} is not in the JWT keyring ({', '.join(self.keys)})")

    @property
    def active_secret(self) -> str:
        return self.keys[self.active_kid]

    @functools.cached_property
    def fingerprint(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What the verified-token cache keys on besides the token: the same keyring, the same verdicts."""
        return self.active_kid, tuple(sorted(self.keys.items()))


@functools.lru_cache(maxsize=16)  # every request verifies a token; the settings it parses seldom change
def parse_keyring(jwt_keys: str, active_kid: str, fallback_secret: str) -> Keyring:
    """Build the keyring from JWT_KEYS / JWT_ACTIVE_KID / JWT_SECRET (see the module docstring)."""
    if not jwt_keys.strip():
        return Keyring({DEFAULT_KID: fallback_secret}, active_kid or DEFAULT_KID)
    keys: dict[str, str] = {}
    for entry in jwt_keys.split(","):
        if not entry.strip():
            continue
        kid, sep, secret = entry.strip().partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not kid or not secret:
            # Config errors fail loudly at start-up; never echo the secret into a log.
            raise ValueError(f"JWT_KEYS entry for kid {kid!r} is not of the form kid:secret")
        if kid in keys:
            raise ValueError(f"JWT_KEYS lists kid {kid!r} twice")
        keys[kid] = secret
    if not keys:
        raise ValueError("JWT_KEYS is set but holds no kid:secret entry")
    return Keyring(keys, active_kid or next(iter(keys)))


def keyring_from_settings(settings: Settings | None = None) -> Keyring:
    s = settings or get_settings()
    return parse_keyring(s.jwt_keys, s.jwt_active_kid, s.jwt_secret)


def normalize_scopes(scopes: str | Iterable[str]) -> list[str]:
    """'a b' or ['a', 'b a'] -> ['a', 'b']: split on whitespace, drop duplicates, keep first-seen order."""
    items = scopes.split() if isinstance(scopes, str) else [p for s in scopes for p in s.split()]
    return list(dict.fromkeys(items))


def encode_token(
    sub: str,
    tenant_id: str,
    scopes: str | Iterable[str],
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    kid: str | None = None,
    keyring: Keyring | None = None,
    now: float | None = None,
    token_id: str | None = None,
) -> str:
    """Mint a token signed with `kid`'s key (default: the active key). `now` is for tests (epoch seconds)."""
    if not sub or not tenant_id:
        raise ValueError("sub and tenant_id must be non-empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be > 0")
    ring = keyring or keyring_from_settings()
    kid = kid or ring.active_kid
    if kid not in ring.keys:
        raise ValueError(f"kid {kid!r} is not in the JWT keyring")
    issued_at = int(time.time() if now is None else now)
    claims = {
        "sub": sub,
        "tenant_id": tenant_id,
        "scope": " ".join(normalize_scopes(scopes)),
        "iat": issued_at,
        "exp": issued_at + int(ttl_seconds),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": token_id or uuid.uuid4().hex,
    }
    return jwt.encode(claims, ring.keys[kid], algorithm=ALGORITHM, headers={"kid": kid})


def _key_for(header: Mapping[str, Any], ring: Keyring) -> str:
    alg = header.get("alg")
    if alg != ALGORITHM:
        # Checked before any key is touched: no alg=none, no HS512, no RS256 public-key-as-HMAC-secret trick.
        raise TokenError("algorithm", f"token algorithm {alg!r} is not allowed; only {ALGORITHM} is accepted")
    kid = header.get("kid")
    if kid is None:
        return ring.active_secret
    if not isinstance(kid, str) or kid not in ring.keys:
        raise TokenError("unknown_kid", f"token key id {kid!r} is unknown (rotated out?)")
    return ring.keys[kid]


def _claim(payload: Mapping[str, Any], name: str, max_length: int) -> str:
    value = payload.get(name)
    if value is None:
        raise TokenError("missing_claim", f"token has no {name!r} claim")
    # The ids become row keys, cache keys and log fields: no control characters, no unbounded length.
    if (not isinstance(value, str) or not value.strip() or len(value) > max_length
            or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise TokenError("invalid_claim", f"token claim {name!r} must be a non-empty string of at most "
                                          f"{max_length} printable characters")
    return value


# Tokens already verified, so a client's every request does not pay the HMAC and claim checks again: token and
# keyring -> (Principal, monotonic time the entry stops being used). An entry lives at most VERIFIED_FOR_SECONDS
# and never past the token's own exp, so a key removed from the keyring stops working within that time. Each
# entry lives a random 75-100 % of it (app/adapters/cache_lifetime.py): tokens first seen together are not all
# verified again together.
VERIFIED_FOR_SECONDS = 60.0
VERIFIED_MAX_ENTRIES = 10_000
_verified: OrderedDict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[Principal, float]] = OrderedDict()
_verified_lock = threading.Lock()


def decode_token(token: str, *, keyring: Keyring | None = None, leeway: float = LEEWAY_SECONDS) -> Principal:
    """Verify `token` and return its Principal, or raise TokenError saying why not."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", "token is empty or too long")
    ring = keyring or keyring_from_settings()
    cache_key = (token, ring.fingerprint)
    now = time.monotonic()
    with _verified_lock:
        hit = _verified.get(cache_key)
        if hit is not None and now < hit[1]:
            _verified.move_to_end(cache_key)
            return hit[0]
    principal, exp = _verify(token, ring, leeway)
    until = now + min(cache_lifetime.lifetime(VERIFIED_FOR_SECONDS), max(0.0, exp - time.time()))
    with _verified_lock:
        _verified[cache_key] = (principal, until)
        _verified.move_to_end(cache_key)
        while len(_verified) > VERIFIED_MAX_ENTRIES:
            _verified.popitem(last=False)
    return principal


def _verify(token: str, ring: Keyring, leeway: float) -> tuple[Principal, float]:
    """The checks themselves: (Principal, the token's exp as unix seconds)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenError("malformed", "token is not a well-formed JWT") from None
    key = _key_for(header, ring)
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("expired", "token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("immature", "token is not valid yet (iat or nbf is in the future)") from None
    except jwt.InvalidAudienceError:
        raise TokenError("audience", f"token audience is not {AUDIENCE!r}") from None
    except jwt.InvalidIssuerError:
        raise TokenError("issuer", f"token issuer is not {ISSUER!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("missing_claim", f"token has no {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise TokenError("signature", "token signature does not verify") from None
    except jwt.InvalidKeyError:
        # Our key is unusable for HMAC (e.g. a PEM in the keyring): a server misconfiguration, not the client's.
        log.error("JWT keyring key for kid %r is not a usable HMAC secret", header.get("kid"))
        raise TokenError("server_key", "token cannot be verified") from None
    except jwt.PyJWTError as exc:  # DecodeError, InvalidIssuedAtError, InvalidKeyError, ...: never a 500
        raise TokenError("malformed", f"token is invalid: {exc}") from None

    scope = payload.get("scope")
    if scope is None:
        raise TokenError("missing_claim", "token has no 'scope' claim")
    if not isinstance(scope, str):
        raise TokenError("invalid_claim", "token claim 'scope' must be a space-separated string")
    token_id = payload.get("jti")
    return Principal(
        user_id=_claim(payload, "sub", MAX_USER_ID_LENGTH),
        tenant_id=_claim(payload, "tenant_id", MAX_TENANT_ID_LENGTH),
        scopes=frozenset(scope.split()),
        token_id=token_id if isinstance(token_id, str) else None,
    ), float(payload["exp"])
