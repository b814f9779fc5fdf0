"""Refuse to start with unsafe settings outside development: the check web and the workers run first.

    python -m app.entrypoints.serve      -> require_safe_settings("web")
    python -m workers.portfolio_consumer -> require_safe_settings("worker-portfolio")

Outside HASHINSIGHT_ENV=development (the default is production) every JWT signing key, JWT_SECRET or each key of
JWT_KEYS, must differ from the built-in development secret (it is public: it is in the repository, so anyone can
mint tokens with it) and hold at least MIN_SECRET_BYTES bytes (HS256 wants a key as long as its hash, RFC 7518
section 3.2). A refused start prints why on stderr and exits with EX_CONFIG (78); supervisord and docker then show
the process failing at start-up with that message.
"""

from __future__ import annotations

import sys

from app.adapters.tokens import keyring_from_settings
from app.config import BUILTIN_JWT_SECRET, ENVIRONMENTS, Settings, get_settings

MIN_SECRET_BYTES = 32
EX_CONFIG = 78


def unsafe_settings(settings: Settings | None = None) -> list[str]:
    """Why these settings must not run outside development (empty when they may, or in development)."""
    s = settings or get_settings()
    if s.environment not in ENVIRONMENTS:
        return [f"HASHINSIGHT_ENV={s.environment!r} is neither {' nor '.join(ENVIRONMENTS)}"]
    if s.development:
        return []
    try:
        ring = keyring_from_settings(s)
    except ValueError as exc:
        return [f"the JWT keyring is invalid: {exc}"]
    problems = []
    for kid, secret in ring.keys.items():
        name = "JWT_SECRET" if not s.jwt_keys.strip() else f"JWT_KEYS key {kid!r}"
        if secret == BUILTIN_JWT_SECRET:
            problems.append(f"{name} is the built-in development secret, which is public")
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{name} is {len(secret.encode())} bytes; at least {MIN_SECRET_BYTES} are required")
    return problems


def require_safe_settings(service: str, settings: Settings | None = None) -> None:
    problems = unsafe_settings(settings)
    if not problems:
        return
    s = settings or get_settings()
    print(f"{service}: refusing to start (HASHINSIGHT_ENV={s.environment}):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print("Set JWT_SECRET (or JWT_KEYS) to a random secret of at least 32 bytes, e.g. `openssl rand -hex 32`, "
          "or run with HASHINSIGHT_ENV=development on a development machine.", file=sys.stderr)
    raise SystemExit(EX_CONFIG)
