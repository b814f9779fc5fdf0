"""Print a dev JWT: `python -m tools.token --sub u1 --tenant t1 --scopes "miners:write portfolio:read"`.

Signed with the active key of the keyring (JWT_KEYS/JWT_ACTIVE_KID, else JWT_SECRET), exactly as the API
verifies it. Prints only the token, so `TOKEN=$(make -s token ...)` works.
"""

from __future__ import annotations

import argparse
import sys

from app.adapters.tokens import DEFAULT_TTL_SECONDS, encode_token, keyring_from_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.token", description=__doc__.splitlines()[0])
    parser.add_argument("--sub", required=True, help="user id (the JWT sub)")
    parser.add_argument("--tenant", required=True, help="tenant id")
    parser.add_argument("--scopes", default="", help='space-separated scopes, e.g. "miners:write portfolio:read"')
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds (default 3600)")
    parser.add_argument("--kid", default=None, help="sign with this key id (default: the active one)")
    args = parser.parse_args(argv)
    try:
        token = encode_token(args.sub, args.tenant, args.scopes, ttl_seconds=args.ttl, kid=args.kid,
                             keyring=keyring_from_settings())
    except ValueError as exc:
        parser.error(str(exc))
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
