"""Measure the market-data fan-out: `make market-fanout` / `python -m tools.market_fanout`.

    python -m tools.market_fanout [--users 10000] [--tenants 10] [--miners 2] [--cleanup] [--keep]

1. Population: `--users` users spread over `--tenants` tenants (fanout-00 ... ), each with `--miners` miners,
   written straight into the running system's database as the administrator (idempotent; the seed's way,
   no events);
2. warm-up: one snapshot, then every user's GET /api/portfolio, so caches hold the old figures;
3. the measured run: POST /api/market/snapshots with a new price, then, measured from just before the POST:
   - "fan-out committed": every population user's user_portfolio row was recalculated with the new snapshot
     (polling the database: the portfolio consumer's one transaction);
   - "visible to every user": committed AND every user's cached portfolio (user_portfolio:{uid}, warm with
     the old price) invalidated (polling Redis, pipelined). From then on any user's GET /api/portfolio shows
     the new price; this is the fan-out time;
   - the proof: every user's GET /api/portfolio (their own token, concurrent keep-alive clients), each of which
     must show the new price the first time ("stale answers" counts the ones that did not; they are asked
     again). Its duration is the web tier's read throughput on this machine, reported separately.
   Prints the figures; --json writes them too.

Needs the system up (make dev) with RATE_LIMIT_ENABLED as it is (the population users make 2 requests each).
--cleanup removes the population afterwards (default: keep it for the next run; --cleanup-only just removes).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import httpx

from app.adapters.cache import portfolio_key
from app.adapters.redis_client import get_redis
from app.adapters.tokens import encode_token, keyring_from_settings
from app.config import get_settings
from tools import db
from tools.market import post_snapshot

PREFIX = "fanout-"


def tenant_ids(tenants: int) -> list[str]:
    return [f"{PREFIX}{t:02d}" for t in range(tenants)]


def populate(url: str, users: int, tenants: int, miners: int) -> None:
    conn = db.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            """WITH u AS (
                 SELECT %(prefix)s || lpad((n %% %(tenants)s)::text, 2, '0') AS tenant_id,
                        %(prefix)s || lpad((n %% %(tenants)s)::text, 2, '0') || '-u' || lpad(n::text, 5, '0') AS id
                   FROM generate_series(0, %(users)s - 1) AS n)
               INSERT INTO users (id, tenant_id, display_name) SELECT id, tenant_id, id FROM u
               ON CONFLICT (id) DO NOTHING""",
            {"prefix": PREFIX, "tenants": tenants, "users": users},
        )
        cur.execute(
            """WITH need AS (
                 SELECT u.tenant_id, u.id AS user_id, k, gen_random_uuid() AS miner_id,
                        (ARRAY['antminer-s21', 'antminer-s19-pro', 'whatsminer-m50s', 'avalon-a1466'])[1 + (k %% 4)]
                          AS model_id
                   FROM users u CROSS JOIN generate_series(1, %(miners)s) AS k
                  WHERE u.tenant_id LIKE %(like)s
                    AND (SELECT count(*) FROM user_miners um WHERE um.user_id = u.id) < k),
               m AS (INSERT INTO miners (id, tenant_id, model_id, label)
                     SELECT miner_id, tenant_id, model_id, 'fanout ' || k FROM need RETURNING id)
               INSERT INTO user_miners (tenant_id, user_id, miner_id) SELECT tenant_id, user_id, miner_id FROM need""",
            {"miners": miners, "like": PREFIX + "%"},
        )
    conn.close()


def cleanup(url: str) -> None:
    conn = db.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM miners WHERE tenant_id LIKE %s", (PREFIX + "%",))
        cur.execute("DELETE FROM users WHERE tenant_id LIKE %s", (PREFIX + "%",))
    conn.close()


def population(url: str) -> list[tuple[str, str]]:
    conn = db.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT tenant_id, id FROM users WHERE tenant_id LIKE %s ORDER BY id", (PREFIX + "%",))
        rows = cur.fetchall()
    conn.close()
    return rows


def recalculated(url: str, ts: str) -> int:
    conn = db.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FROM user_portfolio
                        WHERE tenant_id LIKE %s AND snapshot_ts = %s::timestamptz""", (PREFIX + "%", ts))
        n = cur.fetchone()[0]
    conn.close()
    return n


class Sweeper:
    """GET /api/portfolio for many users over a few keep-alive clients; returns who shows `price`."""

    def __init__(self, base_url: str, threads: int) -> None:
        self.base_url = base_url
        self.threads = threads
        self._local = threading.local()
        self.requests = 0
        self.errors = 0

    def _client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(base_url=self.base_url, timeout=30.0)
        return self._local.client

    def _shows(self, token: str, price: float | None) -> bool:
        resp = self._client().get("/api/portfolio", headers={"Authorization": f"Bearer {token}"})
        self.requests += 1
        if resp.status_code != 200:
            self.errors += 1
            return False
        network = resp.json().get("network") or {}
        return price is None or network.get("btc_price_usd") == price

    def sweep(self, tokens: dict[str, str], price: float | None) -> set[str]:
        with ThreadPoolExecutor(self.threads) as pool:
            results = pool.map(lambda item: (item[0], self._shows(item[1], price)), tokens.items())
            return {user for user, ok in results if ok}


@dataclass
class Figures:
    users: int
    tenants: int
    miners_per_user: int
    post_ms: float
    fanout_committed_s: float
    visible_to_every_user_s: float
    every_get_checked_s: float
    get_requests: int
    stale_answers: int
    get_errors: int
    sweeps: int


def measure(args: argparse.Namespace) -> Figures:
    settings = get_settings()
    base = args.url or f"http://127.0.0.1:{settings.web_port}"
    admin = db.admin_url()
    populate(admin, args.users, args.tenants, args.miners)
    people = population(admin)
    keyring = keyring_from_settings()
    tokens = {user: encode_token(user, tenant, "portfolio:read", keyring=keyring, ttl_seconds=3600)
              for tenant, user in people}
    sweeper = Sweeper(base, args.threads)
    base_price = 90_000.0 + (time.time() % 1000)

    def snapshot(price: float) -> tuple[str, float]:
        started = time.perf_counter()
        resp = post_snapshot(base, {"btc_price_usd": price, "difficulty": 1.1e14, "block_reward_btc": 3.125})
        if resp.status_code != 201:
            raise SystemExit(f"market-fanout: POST /api/market/snapshots answered {resp.status_code}: {resp.text}")
        return resp.json()["ts"], (time.perf_counter() - started) * 1000

    print(f"population: {len(people)} users in {args.tenants} tenants, {args.miners} miner(s) each")
    ts, _ = snapshot(base_price)
    _wait_recalculated(admin, ts, len(people), args.timeout)
    sweeper.sweep(tokens, None)  # warm: every cache holds the old price now
    print("warm-up done; measuring")

    price = round(base_price + 1234.5, 2)
    requests_before = sweeper.requests
    t0 = time.perf_counter()
    ts, post_ms = snapshot(price)
    _wait_recalculated(admin, ts, len(people), args.timeout)
    committed = time.perf_counter() - t0
    _wait_invalidated([u for _, u in people], args.timeout)
    visible = time.perf_counter() - t0
    pending = dict(tokens)
    sweeps, stale = 0, 0
    while pending and time.perf_counter() - t0 < args.timeout:
        sweeps += 1
        for user in sweeper.sweep(pending, price):
            del pending[user]
        if sweeps == 1:
            stale = len(pending)
    checked = time.perf_counter() - t0
    if pending:
        raise SystemExit(f"market-fanout: {len(pending)} users still show the old price after {args.timeout} s")
    return Figures(len(people), args.tenants, args.miners, round(post_ms, 1), round(committed, 3), round(visible, 3),
                   round(checked, 3), sweeper.requests - requests_before, stale, sweeper.errors, sweeps)


def _wait_invalidated(users: list[str], timeout: float) -> None:
    """Until none of the users' cached portfolios (filled with the old price by the warm-up) is left."""
    client = get_redis()
    keys = [portfolio_key(u) for u in users]
    deadline = time.perf_counter() + timeout
    while True:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        left = [k for k, n in zip(keys, pipe.execute(), strict=True) if n]
        if not left:
            return
        if time.perf_counter() > deadline:
            raise SystemExit(f"market-fanout: {len(left)} cached portfolios still there after {timeout} s")
        keys = left
        time.sleep(0.02)


def _wait_recalculated(url: str, ts: str, expected: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while recalculated(url, ts) < expected:
        if time.perf_counter() > deadline:
            raise SystemExit(f"market-fanout: the fan-out of {ts} did not finish in {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the market-data fan-out on the running system.")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--miners", type=int, default=2, help="miners per user")
    parser.add_argument("--threads", type=int, default=16, help="concurrent GET clients")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--url", default=None)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--cleanup", action="store_true", help="remove the population afterwards")
    parser.add_argument("--cleanup-only", action="store_true", help="only remove the population")
    args = parser.parse_args(argv)
    if args.cleanup_only:
        cleanup(db.admin_url())
        print("market-fanout: population removed")
        return 0
    try:
        figures = measure(args)
    finally:
        if args.cleanup:
            cleanup(db.admin_url())
    print(f"POST /api/market/snapshots: {figures.post_ms} ms")
    print(f"fan-out committed (every user recalculated): {figures.fanout_committed_s} s")
    print(f"visible to every user (committed, every cached portfolio invalidated): "
          f"{figures.visible_to_every_user_s} s")
    print(f"checked: every user's GET /api/portfolio showed the new price by {figures.every_get_checked_s} s "
          f"({figures.get_requests} GETs in {figures.sweeps} sweep(s), {figures.stale_answers} stale answers, "
          f"{figures.get_errors} errors)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(figures), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
