"""Load reference and demo data: `make seed` / `python -m tools.seed --size default`.

Miner models (reference data from the manufacturers' spec sheets) are upserted; roles, permissions and
plans come with the migrations (0006). The demo tenants are reloaded whole: every row of theirs in the
tenant tables is deleted and written again with deterministic ids and values, so re-running never
duplicates and always resets the demo state (miner 7d1c1f8e-... is active again). Other tenants are never
touched. Network snapshots (global) are the seed's own rows (source = 'seed'), replaced each run.
Bulk rows go in with COPY.

The seed bypasses the event bus: it writes no event_outbox rows, audit_logs or derived rows
(user_portfolio, user_analytics, forecast_daily); those come from the consumers' recalculation.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from psycopg2.extensions import cursor as PgCursor

from app.adapters.cache import analytics_key, forecast_key, get_cache, portfolio_key
from tools import db

# The API examples in contracts/openapi.yaml name these.
DEMO_MINER_ID = "7d1c1f8e-2f5b-4b8e-9a53-0c6f4b8a1d01"
DEMO_USER_ID = "demo-user-1"
DEMO_TENANT_ID = "demo-tenant"

# uuid5 namespace for every other seeded id: same input, same id, on every machine.
SEED_NAMESPACE = uuid.UUID("6f0e3c52-8d7a-4b61-9f43-2a1d5c7e9b10")
RANDOM_SEED = 20240420  # the 4th halving: block reward 3.125 BTC since then

# (id, manufacturer, name, hashrate TH/s, power W, release year): manufacturers' published spec sheets.
MINER_MODELS: list[tuple[str, str, str, float, float, int]] = [
    ("antminer-s9", "Bitmain", "Antminer S9", 13.5, 1323, 2016),
    ("antminer-s19", "Bitmain", "Antminer S19", 95, 3250, 2020),
    ("antminer-s19-pro", "Bitmain", "Antminer S19 Pro", 110, 3250, 2020),
    ("antminer-s19j-pro", "Bitmain", "Antminer S19j Pro", 100, 3050, 2021),
    ("antminer-s19-xp", "Bitmain", "Antminer S19 XP", 140, 3010, 2022),
    ("antminer-s21", "Bitmain", "Antminer S21", 200, 3500, 2023),
    ("antminer-t21", "Bitmain", "Antminer T21", 190, 3610, 2023),
    ("antminer-s21-hyd", "Bitmain", "Antminer S21 Hyd.", 335, 5360, 2023),
    ("antminer-s21-pro", "Bitmain", "Antminer S21 Pro", 234, 3510, 2024),
    ("antminer-s21-xp", "Bitmain", "Antminer S21 XP", 270, 3645, 2024),
    ("whatsminer-m30s", "MicroBT", "WhatsMiner M30S", 88, 3344, 2020),
    ("whatsminer-m30s-plus", "MicroBT", "WhatsMiner M30S+", 100, 3400, 2020),
    ("whatsminer-m50", "MicroBT", "WhatsMiner M50", 114, 3306, 2022),
    ("whatsminer-m50s", "MicroBT", "WhatsMiner M50S", 126, 3276, 2022),
    ("whatsminer-m60s", "MicroBT", "WhatsMiner M60S", 186, 3441, 2023),
    ("avalon-a1246", "Canaan", "Avalon A1246", 90, 3420, 2021),
    ("avalon-a1366", "Canaan", "Avalon A1366", 130, 3250, 2022),
    ("avalon-a1466", "Canaan", "Avalon A1466", 150, 3230, 2023),
]

# Plan limits: the subscription_plans rows of migration 0006 (copied into each user_subscriptions row).
PLAN_LIMITS = {"free": (60, 20), "pro": (600, 100), "enterprise": (3000, 500)}
ROLE_CYCLE = ("trader", "operator", "viewer")  # roles, permissions: migration 0006
STATUSES = [("active", 70), ("idle", 8), ("maintenance", 8), ("offline", 8), ("retired", 6)]
# How long ago a non-active miner left 'active' (telemetry stops or goes flat then).
STATUS_SINCE_DAYS = {"idle": 3, "maintenance": 2, "offline": 5, "retired": 30}
SITES = ["Austin TX", "Calgary AB", "Reykjavik", "Paraguay Itaipu", "Oslo"]


@dataclass(frozen=True)
class Size:
    tenants: tuple[tuple[str, int], ...]  # (tenant_id, users)
    miners: int
    snapshot_days: int = 90
    telemetry_days: int = 90
    telemetry_step_min: int = 60


SIZES: dict[str, Size] = {
    "small": Size(tenants=(("demo-tenant", 3), ("acme-mining", 2)), miners=30, telemetry_step_min=360),
    "default": Size(tenants=(("demo-tenant", 4), ("acme-mining", 4), ("northwind-hash", 2)), miners=120),
    "large": Size(
        tenants=(
            ("demo-tenant", 10),
            ("acme-mining", 10),
            ("northwind-hash", 8),
            ("solaris-pool", 6),
            ("glacier-compute", 6),
        ),
        miners=1200,
    ),
}
# Every tenant any size seeds: a smaller size after a larger one removes the larger one's tenants too.
DEMO_TENANTS = sorted({t for s in SIZES.values() for t, _ in s.tenants})

# Tenant tables in delete order (children first).
TENANT_TABLES_DELETE_ORDER = [
    "user_analytics",
    "user_portfolio",
    "forecast_daily",
    "trades",
    "idempotency_keys",
    "maintenance_windows",
    "miner_pools",
    "exchange_credentials",
    "user_miners",
    "miners",
    "inventory",
    "user_subscriptions",
    "user_roles",
    "users",
]


def sid(*parts: object) -> str:
    return str(uuid.uuid5(SEED_NAMESPACE, "/".join(str(p) for p in parts)))


def copy_rows(cur: PgCursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """COPY rows (None -> NULL) into table; returns how many."""
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
        n += 1
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
    return n


# --------------------------------------------------------------------------------------------------
# Generators (pure: same size and same anchor hour give the same rows)
# --------------------------------------------------------------------------------------------------


def network_snapshots(end: datetime, days: int, rng: random.Random) -> list[tuple]:
    """Hourly BTC price / difficulty / hashrate, a deterministic random walk ending at `end`.

    Price: mean-reverting log walk around 80k, kept within 60k-100k. Difficulty: re-targets every
    2016 blocks (~14 days) by a few percent; network hashrate follows difficulty (H = D * 2^32 / 600).
    """
    hours = days * 24
    price = 72_000.0
    difficulty = 0.95e14
    rows = []
    for h in range(hours + 1):
        ts = end - timedelta(hours=hours - h)
        log_p = math.log(price)
        log_p += 0.05 * (math.log(80_000) - log_p) / 24 + rng.gauss(0, 0.006)
        price = min(max(math.exp(log_p), 60_000.0), 100_000.0)
        if h and h % (14 * 24) == 0:
            difficulty = min(max(difficulty * rng.gauss(1.02, 0.03), 0.88e14), 1.2e14)
        hashrate_ehs = difficulty * 2**32 / 600 / 1e18 * (1 + rng.gauss(0, 0.02))
        rows.append((ts.isoformat(), round(price, 2), f"{difficulty:.6e}", round(hashrate_ehs, 2), 3.125, "seed"))
    return rows


@dataclass
class SeedMiner:
    id: str
    tenant_id: str
    user_id: str
    model_id: str
    status: str
    hashrate_ths: float | None
    label: str
    serial: str
    site: str


def build_fleet(size: Size, rng: random.Random) -> tuple[list[tuple], list[SeedMiner]]:
    users: list[tuple] = []  # (tenant, user id, index within tenant)
    for tenant, n_users in size.tenants:
        prefix = tenant.split("-")[0]
        users += [(tenant, f"{prefix}-user-{i}", i) for i in range(1, n_users + 1)]
    models = [m[0] for m in MINER_MODELS]
    weights = [max(m[5] - 2015, 1) ** 2 for m in MINER_MODELS]  # newer models are more common
    statuses, status_w = zip(*STATUSES, strict=True)
    demo = SeedMiner(DEMO_MINER_ID, DEMO_TENANT_ID, DEMO_USER_ID, "antminer-s21", "active", None,
                     "S21 rack A-01", "DEMO-S21-000001", SITES[0])  # fmt: skip
    fleet = [demo]
    for n in range(1, size.miners):
        tenant, user_id, _ = users[n % len(users)]
        model = rng.choices(models, weights)[0]
        status = rng.choices(statuses, status_w)[0]
        tuned = next(m for m in MINER_MODELS if m[0] == model)[3] * rng.uniform(0.9, 1.08)
        fleet.append(
            SeedMiner(
                id=sid(tenant, "miner", n),
                tenant_id=tenant,
                user_id=user_id,
                model_id=model,
                status=status,
                hashrate_ths=round(tuned, 1) if rng.random() < 0.15 else None,  # some run tuned firmware
                label=f"{model.split('-', 1)[1].upper()} #{n}",
                serial=f"{tenant[:4].upper()}-{n:06d}",
                site=rng.choice(SITES),
            )
        )
    return users, fleet


def telemetry_rows(fleet: list[SeedMiner], end: datetime, size: Size, rng: random.Random) -> Iterable[str]:
    """COPY lines for miner_telemetry: healthy readings while active, flat when idle, none when down."""
    spec = {m[0]: (m[3], m[4]) for m in MINER_MODELS}
    step = timedelta(minutes=size.telemetry_step_min)
    n_steps = size.telemetry_days * 24 * 60 // size.telemetry_step_min
    stamps = [(end - step * (n_steps - i)) for i in range(n_steps + 1)]
    stamp_text = [s.isoformat() for s in stamps]
    gauss = rng.gauss
    for m in fleet:
        hr, pw = spec[m.model_id]
        hr = m.hashrate_ths or hr
        # When the miner stopped hashing; active miners never did.
        days_down = STATUS_SINCE_DAYS.get(m.status)
        since = end - timedelta(days=days_down) if days_down is not None else end + step
        head = f"{m.tenant_id}\t{m.id}\t"
        for s, text in zip(stamps, stamp_text, strict=True):
            if s < since:
                yield (
                    f"{head}{text}\t{hr * (1 + gauss(0, 0.015)):.2f}\t"
                    f"{pw * (1 + gauss(0, 0.01)):.0f}\t{66 + gauss(0, 3):.1f}\n"
                )
            elif m.status == "idle":
                yield f"{head}{text}\t0\t{18 + gauss(0, 2):.0f}\t{32 + gauss(0, 2):.1f}\n"


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------


def upsert_miner_models(cur: PgCursor) -> None:
    cur.executemany(
        "INSERT INTO miner_models (id, manufacturer, name, hashrate_ths, power_w, release_year) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET manufacturer = EXCLUDED.manufacturer, "
        "name = EXCLUDED.name, hashrate_ths = EXCLUDED.hashrate_ths, power_w = EXCLUDED.power_w, "
        "release_year = EXCLUDED.release_year",
        MINER_MODELS,
    )


def clear_demo_tenants(cur: PgCursor) -> None:
    # Telemetry is by far the biggest table: when it holds demo rows only, TRUNCATE beats DELETE.
    cur.execute("SELECT EXISTS (SELECT 1 FROM miner_telemetry WHERE tenant_id <> ALL(%s))", (DEMO_TENANTS,))
    if cur.fetchone()[0]:
        cur.execute("DELETE FROM miner_telemetry WHERE tenant_id = ANY(%s)", (DEMO_TENANTS,))
    else:
        cur.execute("TRUNCATE miner_telemetry")
    for table in TENANT_TABLES_DELETE_ORDER:
        cur.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", (DEMO_TENANTS,))


def write_users(cur: PgCursor, users: list[tuple]) -> dict[str, int]:
    counts = {}
    cols = ("id", "tenant_id", "email", "display_name", "electricity_price_usd_kwh")
    rows = [
        (u, t, f"{u}@{t}.example", u.replace("-", " ").title(), round(0.045 + 0.005 * (i % 8), 3)) for t, u, i in users
    ]
    counts["users"] = copy_rows(cur, "users", cols, rows)
    # The first user of each tenant is its admin; demo-user-1 is on pro (the API examples assume it).
    roles = [(t, u, "admin" if i == 1 else ROLE_CYCLE[i % 3]) for t, u, i in users]
    counts["user_roles"] = copy_rows(cur, "user_roles", ("tenant_id", "user_id", "role_id"), roles)
    plans = [(t, u, "pro" if i == 1 else (None, "free", "pro", "enterprise")[i % 4]) for t, u, i in users]
    subs = [(t, u, plan, *PLAN_LIMITS[plan]) for t, u, plan in plans if plan]  # no row = free
    cols = ("tenant_id", "user_id", "plan", "requests_per_minute", "burst")
    counts["user_subscriptions"] = copy_rows(cur, "user_subscriptions", cols, subs)
    return counts


def write_fleet(cur: PgCursor, fleet: list[SeedMiner], tenants: list[str], created: datetime) -> dict[str, int]:
    counts = {}
    at = created.isoformat()
    cols = ("id", "tenant_id", "model_id", "label", "serial_number", "status", "hashrate_ths", "hosting_site")
    rows = [(m.id, m.tenant_id, m.model_id, m.label, m.serial, m.status, m.hashrate_ths, m.site) for m in fleet]
    # Deterministic purchase price between 2,500 and 5,499 USD.
    rows = [(*r, f"{2500 + int(r[0][:4], 16) % 3000}.00", at, at) for r in rows]
    counts["miners"] = copy_rows(cur, "miners", (*cols, "purchase_price_usd", "created_at", "updated_at"), rows)
    rows = [(m.tenant_id, m.user_id, m.id, at) for m in fleet]
    counts["user_miners"] = copy_rows(cur, "user_miners", ("tenant_id", "user_id", "miner_id", "created_at"), rows)
    stock = ("antminer-s21", "whatsminer-m60s", "avalon-a1466")
    rows = [(sid(t, "inventory", mod), t, mod, 4 + 3 * k, SITES[k]) for t in tenants for k, mod in enumerate(stock)]
    counts["inventory"] = copy_rows(cur, "inventory", ("id", "tenant_id", "model_id", "quantity", "location"), rows)
    return counts


def write_snapshots(cur: PgCursor, rows: list[tuple]) -> int:
    cur.execute("DELETE FROM network_snapshots WHERE source = 'seed'")
    cur.execute("CREATE TEMP TABLE seed_snapshots (LIKE network_snapshots) ON COMMIT DROP")
    cols = ("ts", "btc_price_usd", "difficulty", "network_hashrate_ehs", "block_reward_btc", "source")
    copy_rows(cur, "seed_snapshots", cols, rows)
    # A real feed's row for the same hour wins over the seed's.
    cur.execute("INSERT INTO network_snapshots SELECT * FROM seed_snapshots ON CONFLICT (ts) DO NOTHING")
    return cur.rowcount


def write_telemetry(cur: PgCursor, lines: Iterable[str]) -> int:
    buf = io.StringIO()
    buf.writelines(lines)
    buf.seek(0)
    cols = "tenant_id, miner_id, ts, hashrate_ths, power_w, temperature_c"
    cur.copy_expert(f"COPY miner_telemetry ({cols}) FROM STDIN", buf)
    return cur.rowcount


def seed(url: str, size_name: str = "default") -> dict[str, int]:
    """Seed one size; returns the rows written per table."""
    size = SIZES[size_name]
    rng = random.Random(RANDOM_SEED)
    # Anchor on the current UTC hour: always "the last 90 days", and identical within the hour.
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    users, fleet = build_fleet(size, rng)
    tenants = [t for t, _ in size.tenants]
    counts: dict[str, int] = {}

    conn = db.connect(url, application_name="hashinsight-seed")
    try:
        with conn, conn.cursor() as cur:  # partitions first, in their own short transaction
            cur.execute("SELECT to_regprocedure('hashinsight_ensure_partitions(integer, integer)')")
            if cur.fetchone()[0] is None:
                raise RuntimeError(f"{db.database_name(url)} is not migrated: run `make migrate` first")
            days_back = max(size.snapshot_days, size.telemetry_days) + 2
            cur.execute("SELECT hashinsight_ensure_partitions(%s, 45)", (days_back,))
        with conn, conn.cursor() as cur:  # everything else: one transaction, all or nothing
            cur.execute("SET LOCAL synchronous_commit = off")
            upsert_miner_models(cur)
            counts["miner_models"] = len(MINER_MODELS)
            clear_demo_tenants(cur)
            counts |= write_users(cur, users)
            counts |= write_fleet(cur, fleet, tenants, created=end - timedelta(days=size.telemetry_days + 5))
            counts["network_snapshots"] = write_snapshots(cur, network_snapshots(end, size.snapshot_days, rng))
            counts["miner_telemetry"] = write_telemetry(cur, telemetry_rows(fleet, end, size, rng))
        return counts
    finally:
        conn.close()


def demo_user_ids(url: str) -> set[str]:
    conn = db.connect(url, application_name="hashinsight-seed", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.users')")
            if cur.fetchone()[0] is None:
                return set()
            cur.execute("SELECT id FROM users WHERE tenant_id = ANY(%s)", (DEMO_TENANTS,))
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def forget_cached_views(user_ids: set[str]) -> bool:
    """The reseeded users' cached pages and forecasts describe the old data: drop them."""
    keys = [key for uid in sorted(user_ids) for key in (portfolio_key(uid), analytics_key(uid), forecast_key(uid))]
    return not keys or get_cache().invalidate(*keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load reference and demo data.")
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--database-url", default=None, help="default: $ADMIN_DATABASE_URL or the stack's")
    args = parser.parse_args(argv)
    url = args.database_url or db.admin_url()
    started = time.monotonic()
    try:
        before = demo_user_ids(url)
        counts = seed(url, args.size)
    except Exception as exc:
        print(f"seed: failed against {db.redact(url)}: {exc}".rstrip(), file=sys.stderr)
        return 1
    cleared = forget_cached_views(before | demo_user_ids(url))
    size = SIZES[args.size]
    print(f"seed: size {args.size}: tenants {', '.join(t for t, _ in size.tenants)}")
    for table, n in counts.items():
        print(f"  {table:<20} {n:>9,}")
    print(f"  cached views         {'cleared' if cleared else 'left to expire (Redis unreachable)'}")
    print(f"seed: done in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
