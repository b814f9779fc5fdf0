"""The benchmark's scenarios besides the rate ladder: connector defaults, consumer counts, fleet sizes,
reads and writes on their own, replay, and a broker lost in a three-node cluster."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.adapters.db import worker_engine
from app.adapters.kafka_connect import ConnectClient
from app.config import get_settings
from app.service_layer.forecast import refresh_forecasts
from app.service_layer.portfolio import recalc_portfolios
from app.service_layer.unit_of_work import UnitOfWork
from tools import db
from tools.bench.openloop import RateResult, run_rate, users_for
from tools.connect import connector_definition
from tools.loadgen import provision_users

ROOT = Path(__file__).resolve().parents[2]
# What the tuned connector sets beyond Debezium's and Connect's defaults (connectors/outbox.json).
TUNED_KEYS = ("poll.interval.ms", "producer.override.linger.ms", "max.batch.size", "max.queue.size")


def stack(*args: str) -> str:
    proc = subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"stack.sh {' '.join(args)}: {proc.stderr[-1500:]}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------- connector


def register_connector(defaults: bool) -> None:
    """The connector as in connectors/outbox.json, or with the latency tuning removed (connector defaults)."""
    name, config = connector_definition()
    if defaults:
        config = {k: v for k, v in config.items() if k not in TUNED_KEYS}
    client = ConnectClient(get_settings().connect_url)
    client.put_config(name, config)
    time.sleep(3)
    client.wait_running(name, timeout=120)


async def connector_defaults(rates: list[float], duration: float, log: Any) -> list[RateResult]:
    results = []
    register_connector(defaults=True)
    try:
        for rate in rates:
            log(f"bench: {rate:g} writes/s for {duration:g} s with the connector's defaults")
            results.append(await run_rate(f"defaults-{rate:g}", rate, duration, users_for("defaults", rate)))
    finally:
        register_connector(defaults=False)
    return results


# ---------------------------------------------------------------------------------------------- consumers


async def consumer_counts(counts: list[int], rate: float, duration: float, log: Any, drain_events: int = 3000
                          ) -> list[dict[str, Any]]:
    """Latency at a fixed rate, and the rate a backlog drains at, with 1, 2, 4 portfolio consumers."""
    out = []
    try:
        for n in counts:
            stack("scale", "worker-portfolio", str(n))
            time.sleep(8)  # the group settles
            log(f"bench: {n} portfolio consumer(s): {rate:g} writes/s for {duration:g} s")
            result = await run_rate(f"consumers-{n}", rate, duration, users_for(f"c{n}", rate))
            drain = await drain_rate(n, log, drain_events)
            out.append({"consumers": n, "run": result.summary(), "drain_events_per_s": drain})
    finally:
        stack("scale", "worker-portfolio", "1")
    return out


async def drain_rate(consumers: int, log: Any, events: int = 3000) -> float:
    """Stop the portfolio consumers, let a backlog of `events` build up on Kafka, start `consumers` of them and
    time how fast they apply it."""
    stack("stop", "worker-portfolio")
    users = provision_users(f"bench-drain-{uuid.uuid4().hex[:6]}", 10, 30)
    tenants = sorted({u.tenant_id for u in users})
    # Written as the API writes them but without HTTP, so the backlog is exactly `events` whatever the API's
    # own throughput (measured apart, in reads_and_writes).
    await asyncio.to_thread(_bulk_events, users, events, 500)
    written = events
    time.sleep(5)  # let Debezium put it all on Kafka
    t0 = time.monotonic()
    stack("scale", "worker-portfolio", str(consumers))
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        while time.monotonic() - t0 < 300:
            cur.execute("SELECT count(*) FROM consumer_inbox WHERE consumer_name = 'hashinsight.portfolio' "
                        "AND tenant_id = ANY(%s)", (tenants,))
            if cur.fetchone()[0] >= written:
                break
            time.sleep(0.2)
    elapsed = time.monotonic() - t0
    rate = round(written / elapsed, 1)
    log(f"bench:   {written} queued events drained by {consumers} consumer(s) in {elapsed:.1f} s ({rate}/s, "
        "process start included)")
    return rate


# ---------------------------------------------------------------------------------------------- fleet sizes


def fleet_sizes(sizes: list[int], repeats: int = 5) -> list[dict[str, Any]]:
    """Recalculation and forecast refresh of one user with a fleet of each size, in the worker's transaction."""
    tenant = f"bench-fleet-{uuid.uuid4().hex[:6]}"
    out = []
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        for size in sizes:
            user = f"{tenant}-{size}"
            cur.execute("INSERT INTO users (id, tenant_id, display_name) VALUES (%s, %s, 'fleet')", (user, tenant))
            cur.execute(
                """WITH m AS (INSERT INTO miners (tenant_id, model_id, label, status)
                              SELECT %s, (ARRAY['antminer-s21','antminer-s19-pro','whatsminer-m50s'])[1 + g %% 3],
                                     'fleet ' || g, CASE WHEN g %% 10 = 0 THEN 'idle' ELSE 'active' END
                                FROM generate_series(1, %s) g RETURNING id)
                   INSERT INTO user_miners (tenant_id, user_id, miner_id) SELECT %s, %s, id FROM m""",
                (tenant, size, tenant, user),
            )
    engine = worker_engine()
    for size in sizes:
        user = f"{tenant}-{size}"
        timings: dict[str, list[float]] = {"portfolio_ms": [], "forecast_ms": []}
        for _ in range(repeats):
            for key, fn in (("portfolio_ms", recalc_portfolios), ("forecast_ms", refresh_forecasts)):
                with UnitOfWork(engine, tenant) as uow:
                    t0 = time.perf_counter()
                    fn(uow, [user])
                    uow.commit()
                    timings[key].append(1000 * (time.perf_counter() - t0))
        out.append({"miners": size, **{k: round(statistics.median(v), 2) for k, v in timings.items()}})
    return out


# ---------------------------------------------------------------------------------------------- reads


def _wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["bash", "-c", "(test $(id -u) -eq 0 || exec sudo true) && "
                    "$( [ $(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                    "--no-install-recommends wrk >/dev/null 2>&1 || { $( [ $(id -u) -eq 0 ] || echo sudo ) "
                    "apt-get update -qq && $( [ $(id -u) -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive "
                    "apt-get install -y -qq --no-install-recommends wrk >/dev/null; }"], check=True, timeout=600)
    return shutil.which("wrk") or "wrk"


def wrk(url: str, seconds: int, connections: int = 32, script: str | None = None) -> dict[str, Any]:
    cmd = [_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = int(non2xx.group(1)) if non2xx else 0
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    # Only answered requests count: a 429 from the limiter is cheap and would flatter the figure.
    return {"requests_per_s": round((total - failed) / seconds, 1), "p50": lat.get("50"), "p99": lat.get("99"),
            "non_2xx": failed}


def rotating_tokens_script(tokens: list[str], method: str = "GET", body_of: str | None = None) -> str:
    """A wrk script sending each request with the next user's token (the limiter stays on, per user)."""
    lines = ", ".join(json.dumps(t) for t in tokens)
    body = f"local body = {body_of}" if body_of else "local body = nil"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f"""local tokens = {{{lines}}}
local n = 0
request = function()
  n = n + 1
  {body}
  local headers = {{["Authorization"] = tokens[(n % #tokens) + 1]}}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format("{method}", nil, headers, body)
end
""")
        return lua.name


def reads_and_writes(seconds: int, log: Any, users_count: int = 200) -> dict[str, Any]:
    """Cached reads against a bare Connexion route with the same JWT check, and POST /api/miners on its own.
    Every figure rotates over `users_count` users' tokens, so the per-user limiter (on) is never what answers."""
    settings = get_settings()
    bare_port = settings.web_port + 50
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "tools.bench.bare_app:app", "--host", "127.0.0.1",
                             "--port", str(bare_port), "--workers", "2", "--no-access-log", "--log-level", "warning"],
                            cwd=ROOT, env=dict(os.environ))
    scripts: list[str] = []
    try:
        users = provision_users(f"bench-reads-{uuid.uuid4().hex[:6]}", 4, users_count // 4)
        tokens = [u.auth["Authorization"] for u in users]
        base = f"http://127.0.0.1:{settings.web_port}"
        with httpx.Client(timeout=30) as client:
            for token in tokens:  # warm every user's cache entries
                for path in ("/api/portfolio", "/analytics/main"):
                    client.get(f"{base}{path}", headers={"Authorization": token}).raise_for_status()
            for _ in range(60):
                try:
                    if client.get(f"http://127.0.0.1:{bare_port}/bare",
                                  headers={"Authorization": tokens[0]}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        gets = rotating_tokens_script(tokens)
        scripts.append(gets)
        result: dict[str, Any] = {}
        for name, url in (("bare Connexion route", f"http://127.0.0.1:{bare_port}/bare"),
                          ("GET /api/portfolio (cached)", f"{base}/api/portfolio"),
                          ("GET /analytics/main (cached)", f"{base}/analytics/main")):
            log(f"bench: {name} for {seconds} s")
            result[name] = wrk(url, seconds, script=gets)
        baseline = result["bare Connexion route"]["requests_per_s"]
        for name in ("GET /api/portfolio (cached)", "GET /analytics/main (cached)"):
            result[name]["ratio_to_bare"] = round(result[name]["requests_per_s"] / baseline, 3)
        posts = rotating_tokens_script(
            tokens, "POST", """'{"model_id":"antminer-s21","label":"wrk ' .. n .. '"}'""")
        scripts.append(posts)
        log(f"bench: POST /api/miners on its own for {seconds} s")
        result["POST /api/miners"] = wrk(f"{base}/api/miners", seconds, connections=32, script=posts)
        return result
    finally:
        for path in scripts:
            os.unlink(path)
        bare.terminate()
        bare.wait(20)


# ---------------------------------------------------------------------------------------------- replay


def replay_speed(events: int, log: Any) -> dict[str, Any]:
    """Put `events` miner events through the bus, then replay their window to the portfolio consumer, honouring
    the inbox (all skipped as applied) and bypassing it (all applied again); coalescing as in live traffic."""
    from tools import replay as replay_tool
    from workers.portfolio_consumer import PortfolioHandler

    users = provision_users(f"bench-replay-{uuid.uuid4().hex[:6]}", 10, 100)
    start = datetime.now(timezone.utc)
    log(f"bench: writing {events} events for the replay")
    _bulk_events(users, events)
    # The live consumer applies them first (that is the "already applied" the first replay skips).
    tenants = sorted({u.tenant_id for u in users})
    deadline = time.monotonic() + 900
    with db.connect(db.admin_url(), autocommit=True) as conn, conn.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM consumer_inbox WHERE consumer_name = 'hashinsight.portfolio' "
                        "AND tenant_id = ANY(%s)", (tenants,))
            if cur.fetchone()[0] >= events:
                break
            time.sleep(1)
    end = datetime.now(timezone.utc)
    out = {"events": events}
    for bypass in (False, True):
        t0 = time.monotonic()
        summary = replay_tool.replay(PortfolioHandler(), ["events.miner"], start, end, dry_run=False,
                                     bypass_inbox=bypass)
        elapsed = time.monotonic() - t0
        key = "bypass_inbox" if bypass else "inbox"
        out[key] = {"seconds": round(elapsed, 1), "events_per_s": round(events / elapsed, 1),
                    "applied": summary.get("applied", 0), "skipped_as_applied": summary.get("skipped_as_applied", 0)}
        log(f"bench:   replay ({key}): {events} events in {elapsed:.1f} s")
    return out


def _bulk_events(users: list[Any], events: int, chunk: int = 2000) -> None:
    """Miners and their miner.added events written as the API writes them (rows and outbox in one transaction,
    one statement per table), a chunk per transaction, without going through HTTP."""
    from app.adapters.db import api_engine, columns

    by_tenant: dict[str, list[Any]] = {}
    for u in users:
        by_tenant.setdefault(u.tenant_id, []).append(u)
    tenants = sorted(by_tenant)
    done = 0
    while done < events:
        # Chunk by chunk round the tenants, so every user's fleet grows alike.
        tenant = tenants[(done // chunk) % len(tenants)]
        tenant_users = by_tenant[tenant]
        rows = [(str(uuid.uuid4()), tenant_users[i % len(tenant_users)].user_id)
                for i in range(min(chunk, events - done))]
        with UnitOfWork(api_engine(), tenant) as uow:
            params = {"t": tenant} | columns(rows, ids=lambda r: r[0], users=lambda r: r[1])
            uow.conn.execute(text("""INSERT INTO miners (id, tenant_id, model_id, label, status)
                                     SELECT CAST(i AS uuid), :t, 'antminer-s21', 'replay', 'active'
                                       FROM unnest(CAST(:ids AS text[])) AS i"""), params)
            uow.conn.execute(text("""INSERT INTO user_miners (tenant_id, user_id, miner_id)
                                     SELECT :t, r.u, CAST(r.i AS uuid)
                                       FROM unnest(CAST(:users AS text[]), CAST(:ids AS text[])) AS r (u, i)"""),
                             params)
            uow.conn.execute(text("""INSERT INTO event_outbox (id, kind, user_id, entity_id, payload, tenant_id)
                                     SELECT gen_random_uuid()::text, 'miner.added', r.u, r.i,
                                            jsonb_build_object('miner_id', r.i, 'model_id', 'antminer-s21',
                                                               'status', 'active', 'label', 'replay',
                                                               'serial_number', NULL, 'hashrate_ths', 200.0,
                                                               'power_w', 3500), :t
                                       FROM unnest(CAST(:users AS text[]), CAST(:ids AS text[])) AS r (u, i)"""),
                             params)
            uow.commit()
        done += len(rows)


# ---------------------------------------------------------------------------------------------- cluster


async def broker_kill(rate: float, duration: float, log: Any) -> RateResult:
    """With KAFKA_NODES=3: a run during which one broker is SIGKILLed (supervisord restarts it)."""

    async def kill_one() -> None:
        await asyncio.sleep(duration / 3)
        pid = int(stack("pid", "kafka-2").split()[0])
        log(f"bench: SIGKILL kafka-2 (pid {pid})")
        os.kill(pid, 9)

    return await run_rate("broker-kill", rate, duration, users_for("broker", rate), during=kill_one)
