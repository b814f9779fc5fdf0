"""`make market PRICE=... DIFFICULTY=...`: record a network snapshot through the API (POST /api/market/snapshots).

    python -m tools.market --price 97000 --difficulty 1.1e14 [--reward 3.125] [--hashrate 800] [--ts ISO]

Signs a token for the operator `market-feed` of tenant `ops` with the market:write scope, posts the snapshot to
the running web server and prints the answer; the consumers then reprice every portfolio and forecast.
"""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from app.adapters.tokens import encode_token, keyring_from_settings
from app.config import get_settings

OPERATOR = ("market-feed", "ops")


def post_snapshot(base_url: str, body: dict[str, object], timeout: float = 10.0) -> httpx.Response:
    token = encode_token(*OPERATOR, "market:write", keyring=keyring_from_settings())
    return httpx.post(f"{base_url}/api/market/snapshots", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {token}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record a network snapshot through the API.")
    parser.add_argument("--price", type=float, required=True, help="BTC price in USD")
    parser.add_argument("--difficulty", type=float, required=True, help="network difficulty, e.g. 1.1e14")
    parser.add_argument("--reward", type=float, default=3.125, help="block reward in BTC (default 3.125)")
    parser.add_argument("--hashrate", type=float, default=None, help="network hashrate EH/s (default: implied)")
    parser.add_argument("--ts", default=None, help="snapshot time, ISO-8601 with a zone (default now)")
    parser.add_argument("--url", default=f"http://127.0.0.1:{get_settings().web_port}")
    args = parser.parse_args(argv)
    body: dict[str, object] = {"btc_price_usd": args.price, "difficulty": args.difficulty,
                               "block_reward_btc": args.reward}
    if args.hashrate is not None:
        body["network_hashrate_ehs"] = args.hashrate
    if args.ts:
        body["ts"] = args.ts
    try:
        resp = post_snapshot(args.url, body)
    except httpx.HTTPError as exc:
        print(f"market: the web server at {args.url} is unreachable ({exc}); is the system up (make dev)?",
              file=sys.stderr)
        return 2
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 201 else 1


if __name__ == "__main__":
    sys.exit(main())
