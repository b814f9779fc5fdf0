"""`make bench` / `python -m tools.bench`: the system's write-to-visible latency under open-loop load.

Against the running system (make dev), in this order (each part can be skipped):
1. the rate ladder: 10, 50, 100 and 200 writes/s for 60 s each (`--rates`, `--duration`), every write timed
   stage by stage (tools/bench/openloop.py), CPU per write per process from /proc, exactly-once checked after;
2. the same with the connector's defaults (its latency tuning removed), for the ratio tuning buys;
3. 1, 2 and 4 portfolio consumers in one group: latency at 100 writes/s and the rate a backlog drains at;
4. recalculation time for fleets of 10, 1,000 and 10,000 miners;
5. cached reads against a bare Connexion route with the same JWT check, and POST /api/miners on its own (wrk);
6. a replay of 100,000 events, with and without the inbox;
7. with KAFKA_NODES=3, a run during which a broker is SIGKILLed.

Results go to bench-results/<UTC time>/ (results.json, latency-cdf.png, stages.png, timeline.png, report.txt)
and the table is printed, with each run's worst seconds (tools/bench/timeline.py). `--smoke` is the short form
`make test` runs: every part, tiny, no targets judged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools.bench import report, scenarios
from tools.bench.openloop import RateResult, run_rate, users_for

ROOT = Path(__file__).resolve().parents[2]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Open-loop write-to-visible benchmark of the running system.")
    p.add_argument("--rates", default="10,50,100,200", help="writes/s of the ladder, comma-separated")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    p.add_argument("--defaults-rates", default="100", help="rates to repeat with the connector's defaults ('' skips)")
    p.add_argument("--consumers", default="1,2,4", help="portfolio consumer counts ('' skips)")
    p.add_argument("--consumers-rate", type=float, default=100.0)
    p.add_argument("--fleets", default="10,1000,10000", help="fleet sizes to time ('' skips)")
    p.add_argument("--reads-seconds", type=int, default=10, help="seconds per read/write throughput run (0 skips)")
    p.add_argument("--replay-events", type=int, default=100_000, help="0 skips")
    p.add_argument("--warmup", type=float, default=120.0, help="seconds of writes first, not in the ladder (0 skips)")
    p.add_argument("--warmup-rate", type=float, default=100.0, help="writes/s of the warm-up")
    p.add_argument("--drain-events", type=int, default=3000, help="backlog size for the consumer-count drains")
    p.add_argument("--cold-users", action="store_true",
                   help="the ladder's users make their first request inside their rung, not before its clock "
                        "starts (tools/bench/openloop.py: sign_in)")
    p.add_argument("--out", type=Path, help="results folder (default bench-results/<UTC time>)")
    p.add_argument("--smoke", action="store_true", help="every part, tiny: the form make test runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.rates, args.duration, args.defaults_rates = "5", 3.0, "5"
        args.consumers, args.consumers_rate, args.fleets = "2", 5.0, "10,100"
        args.reads_seconds, args.replay_events, args.warmup, args.drain_events = 2, 300, 3.0, 300
        args.warmup_rate = 5.0
    return args


def _list(value: str, kind: type = float) -> list[Any]:
    return [kind(v) for v in value.split(",") if v.strip()]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[RateResult] = []
    warmup = None
    if args.warmup:
        # Fresh JVMs keep compiling Kafka's and Connect's hot paths for their first ~10,000 writes (after 6,000
        # they still cost twice their steady state): a one-off cost that would land on whichever rungs came
        # first. The warm-up's own figures are reported on a line of their own.
        log(f"bench: warming up at {args.warmup_rate:g} writes/s for {args.warmup:g} s "
            "(connections, caches, the JVMs' compilation; not in the ladder)")
        warmup = await run_rate("warmup", args.warmup_rate, args.warmup, users_for("warmup", args.warmup_rate),
                                settle=10, cold_users=args.cold_users)
        log("bench:   " + report.rate_table([warmup.summary()]).splitlines()[-1])
    for rate in _list(args.rates):
        log(f"bench: {rate:g} writes/s for {args.duration:g} s")
        runs.append(await run_rate(f"rate-{rate:g}", rate, args.duration, users_for("ladder", rate),
                                   cold_users=args.cold_users))
        summary = runs[-1].summary()
        log("bench:   " + report.rate_table([summary]).splitlines()[-1])
        log("bench:   worst second " + (summary["worst_seconds"] or ["-"])[0])
    defaults = await scenarios.connector_defaults(_list(args.defaults_rates), args.duration, log) \
        if args.defaults_rates else []
    document: dict[str, Any] = {
        "started": args.started, "machine": machine(), "runs": [r.summary() for r in runs],
        "warmup": warmup.summary() if warmup else None,
        "connector_defaults": [r.summary() for r in defaults],
    }
    ratios = []
    for d in defaults:
        tuned = next((r.summary() for r in runs if r.rate == d.rate), None)
        if tuned:
            dp95, tp95 = d.summary()["stages_ms"]["total"]["p95"], tuned["stages_ms"]["total"]["p95"]
            ratios.append({"rate": d.rate, "total_p95_defaults_over_tuned": round(dp95 / tp95, 2) if tp95 else None,
                           "capture_ms_tuned": tuned["stages_ms"]["capture"],
                           "capture_ms_defaults": d.summary()["stages_ms"]["capture"]})
    document["tuning_ratios"] = ratios
    if args.consumers:
        document["consumer_counts"] = await scenarios.consumer_counts(
            _list(args.consumers, int), args.consumers_rate, min(args.duration, 30.0), log, args.drain_events)
    if args.fleets:
        log("bench: recalculation time by fleet size")
        document["fleet_sizes"] = await asyncio.to_thread(scenarios.fleet_sizes, _list(args.fleets, int))
    if args.reads_seconds:
        document["reads_and_writes"] = await asyncio.to_thread(scenarios.reads_and_writes, args.reads_seconds, log)
    if args.replay_events:
        document["replay"] = await asyncio.to_thread(scenarios.replay_speed, args.replay_events, log)
    if os.environ.get("KAFKA_NODES", "1") == "3":
        kill = await scenarios.broker_kill(100.0 if not args.smoke else 5.0, args.duration, log)
        document["broker_kill"] = kill.summary()
        runs.append(kill)
    document["_results"] = runs + defaults
    return document


def machine() -> dict[str, Any]:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(mem_kb / 2**20, 1),
            "kafka_nodes": int(os.environ.get("KAFKA_NODES", "1"))}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = args.out or ROOT / "bench-results" / args.started
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    document = asyncio.run(main_async(args))
    results = document.pop("_results")
    document["duration_s"] = round(time.monotonic() - t0, 1)
    summaries = document["runs"] + document["connector_defaults"]
    text = "\n\n".join([
        report.rate_table(summaries), report.cpu_table(summaries), "\n".join(report.verdicts(document["runs"])),
        report.worst_seconds(([document["warmup"]] if document.get("warmup") else []) + summaries),
        _extras(document),
    ])
    (out / "report.txt").write_text(text + "\n")
    report.write_json(document, out)
    report.plots(results, out)
    print(text)
    print(f"\nresults in {out}")
    checked = summaries + ([document["warmup"]] if document.get("warmup") else [])
    broken = [s["label"] for s in checked if not s["checks"].get("exactly_once")]
    if broken:
        print(f"bench: NOT exactly once in {broken}", file=sys.stderr)
        return 2
    return 0


def _extras(doc: dict[str, Any]) -> str:
    lines = []
    if w := doc.get("warmup"):
        cpu = w["cpu_ms_per_write"]
        lines.append(f"warm-up at {w['rate']:g} writes/s (not in the ladder): CPU {w['cpu_ms_per_write_total']} "
                     f"ms/write, of which Kafka {cpu.get('kafka')} and Connect {cpu.get('connect')}")
    for r in doc.get("tuning_ratios", []):
        lines.append(f"connector defaults / tuned at {r['rate']:g} writes/s: total P95 x"
                     f"{r['total_p95_defaults_over_tuned']}; capture P50/P95 tuned {r['capture_ms_tuned']['p50']}/"
                     f"{r['capture_ms_tuned']['p95']} ms, defaults {r['capture_ms_defaults']['p50']}/"
                     f"{r['capture_ms_defaults']['p95']} ms")
    for c in doc.get("consumer_counts", []):
        t = c["run"]["stages_ms"]["total"]
        lines.append(f"{c['consumers']} portfolio consumer(s): at {c['run']['rate']:g} writes/s total P50 "
                     f"{report._n(t['p50'])} ms, P95 {report._n(t['p95'])} ms; backlog drained at "
                     f"{c['drain_events_per_s']} events/s")
    for f in doc.get("fleet_sizes", []):
        lines.append(f"fleet of {f['miners']:>6} miners: portfolio recalculation {f['portfolio_ms']} ms, "
                     f"forecast refresh {f['forecast_ms']} ms (median)")
    for name, r in doc.get("reads_and_writes", {}).items():
        ratio = f", {r['ratio_to_bare']:.2f} of the bare route" if "ratio_to_bare" in r else ""
        lines.append(f"{name}: {r['requests_per_s']:.0f} req/s (p50 {r['p50']}, p99 {r['p99']}, "
                     f"non-2xx {r['non_2xx']}){ratio}")
    if "replay" in doc:
        rp = doc["replay"]
        lines.append(f"replay of {rp['events']} events: {rp['inbox']['events_per_s']} events/s honouring the inbox, "
                     f"{rp['bypass_inbox']['events_per_s']} events/s bypassing it")
    if "broker_kill" in doc:
        b = doc["broker_kill"]
        lines.append(f"broker SIGKILLed during {b['rate']:g} writes/s: exactly once "
                     f"{b['checks'].get('exactly_once')}, total P95 {report._n(b['stages_ms']['total']['p95'])} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
