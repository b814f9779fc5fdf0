"""The benchmark's results: a printed table, results.json and three plots (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tools.bench.openloop import STAGES, RateResult

TARGETS = {100: (250, 500), 200: (1000, None)}  # rate -> (P95 ms, P99 ms) the issue sets
HARD_FLOOR_MS = 3000
SUSTAINED_SHARE = 0.99  # a rate counts as held when this share of its writes is acknowledged
CPU_TARGET_MS = 10.0
TABLE_STAGES = ("capture", "consume", "page", "total", "forecast")


def rate_table(summaries: list[dict[str, Any]]) -> str:
    head = (f"{'run':<16} {'offered/s':>9} {'acked/s':>8} {'errors':>7} "
            + " ".join(f"{s + ' p50/p95/p99/max ms':>34}" for s in TABLE_STAGES)
            + f" {'CPU ms/write':>13} {'cores':>6}")
    lines = [head]
    for s in summaries:
        cells = []
        for stage in TABLE_STAGES:
            p = s["stages_ms"][stage]
            cells.append(f"{_n(p['p50'])}/{_n(p['p95'])}/{_n(p['p99'])}/{_n(p['max'])}".rjust(34))
        errors = sum(s["errors"].values())
        lines.append(f"{s['label']:<16} {s['rate']:>9g} {s['acknowledged_per_s']:>8.1f} {errors:>7} "
                     + " ".join(cells) + f" {s['cpu_ms_per_write_total']:>13.2f} {s['cpu_cores_busy']:>6.2f}")
    return "\n".join(lines)


def _n(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def cpu_table(summaries: list[dict[str, Any]]) -> str:
    groups = sorted({g for s in summaries for g in s["cpu_ms_per_write"]})
    lines = [f"{'CPU ms per write':<34}" + "".join(f"{s['label']:>14}" for s in summaries)]
    for g in groups:
        lines.append(f"{g:<34}" + "".join(f"{s['cpu_ms_per_write'].get(g, 0):>14.3f}" for s in summaries))
    lines.append(f"{'all but the load generator':<34}" + "".join(f"{s['cpu_ms_per_write_total']:>14.3f}"
                                                              for s in summaries))
    # The same code costs more CPU when the machine is slow: a figure compares with another at the same speed.
    lines.append(f"{'speed probe ms (lower is faster)':<34}" + "".join(f"{_probe(s):>14}" for s in summaries))
    return "\n".join(lines)


def _probe(summary: dict[str, Any]) -> str:
    v = summary.get("speed_probe_ms")
    return "-" if v is None else f"{v:.1f}"


def verdicts(summaries: list[dict[str, Any]]) -> list[str]:
    out = []
    for s in summaries:
        if not s["label"].startswith("rate-"):
            continue
        total = s["stages_ms"]["total"]
        target = TARGETS.get(int(s["rate"]))
        ok_floor = total["p95"] is not None and total["p95"] <= HARD_FLOOR_MS
        # Latency is measured on acknowledged writes: a web that sheds load (503) must not pass for one that held it.
        held = s["acknowledged_per_s"] >= SUSTAINED_SHARE * s["rate"]
        line = f"{s['rate']:g} writes/s: P95 {_n(total['p95'])} ms, P99 {_n(total['p99'])} ms"
        if target:
            p95_ok = total["p95"] is not None and total["p95"] <= target[0]
            p99_ok = target[1] is None or (total["p99"] is not None and total["p99"] <= target[1])
            line += f" (target P95 <= {target[0]}" + (f", P99 <= {target[1]}" if target[1] else "") + \
                f": {'met' if p95_ok and p99_ok and held else 'NOT met'})"
        if s["errors"]:
            answers = ", ".join(f"{'no answer' if k == '-1' else k}: {n}" for k, n in sorted(s["errors"].items()))
            line += f"; acknowledged {s['acknowledged_per_s']:g}/s of {s['rate']:g} ({answers})"
            if s.get("refused_as"):
                line += " refused as " + ", ".join(f"{k}: {n}" for k, n in sorted(s["refused_as"].items()))
        line += f"; hard floor P95 <= 3 s {'met' if ok_floor else 'NOT met'}"
        line += f"; CPU {s['cpu_ms_per_write_total']:.1f} ms/write (target <= {CPU_TARGET_MS:g}: " \
                f"{'met' if s['cpu_ms_per_write_total'] <= CPU_TARGET_MS else 'NOT met'}; " \
                f"speed probe {_probe(s)} ms)"
        line += f"; exactly once: {'yes' if s['checks'].get('exactly_once') else 'NO'}"
        out.append(line)
    return out


def worst_seconds(summaries: list[dict[str, Any]]) -> str:
    """Each run's worst seconds (tools/bench/timeline.py): when its writes fared worst, and beside what."""
    lines = ["Worst seconds of each run (writes sent in that second)"]
    for s in summaries:
        lines += [f"{s['label']:<16} {line}" for line in s.get("worst_seconds", [])]
    return "\n".join(lines)


def plots(results: list[RateResult], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        values = sorted(1000 * s["total"] for w in r.acked if (s := w.stages()))
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=r.label)
    ax.set_xscale("log")
    ax.set_xlabel("commit -> page shows it (ms, log scale)")
    ax.set_ylabel("fraction of writes")
    ax.axvline(250, color="grey", linestyle=":", linewidth=1)
    ax.axvline(3000, color="red", linestyle=":", linewidth=1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Write-to-visible latency, CDF per run")
    path = out / "latency-cdf.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)

    summaries = [r.summary() for r in results]
    fig, ax = plt.subplots(figsize=(8, 5))
    bottoms = [0.0] * len(summaries)
    labels = [s["label"] for s in summaries]
    for stage in STAGES[:-1]:
        if stage == "api":
            continue
        values = [max(0.0, s["stages_ms"][stage]["p50"] or 0.0) for s in summaries]
        ax.bar(labels, values, bottom=bottoms, label=f"{stage} (median)")
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.plot(labels, [s["stages_ms"]["total"]["p95"] or 0 for s in summaries], "k^", label="total P95")
    ax.set_ylabel("ms")
    ax.set_title("Stages of commit -> page, per run (medians stacked)")
    ax.legend()
    fig.tight_layout()
    path = out / "stages.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)
    made.append(timeline_plot(plt, [r for r in results if r.timeline], out / "timeline.png"))
    return made


def timeline_plot(plt: Any, results: list[RateResult], path: Path) -> Path:
    """Per run, two panels sharing the time axis: the writes' P95 and refusals per second; the cores per group."""
    rows = max(1, len(results))
    fig, axes = plt.subplots(2 * rows, 1, figsize=(10, 3.2 * rows * 2), squeeze=False)
    for k, r in enumerate(results):
        top, bottom = axes[2 * k][0], axes[2 * k + 1][0]
        t = [row["t"] for row in r.timeline]
        for stage in ("total", "api"):
            top.plot(t, [row[f"{stage}_p95_ms"] for row in r.timeline], label=f"{stage} P95 (ms)")
        top.set_yscale("log")
        top.axhline(1000, color="grey", linestyle=":", linewidth=1)
        refused = top.twinx()
        refused.bar(t, [row["refused"] for row in r.timeline], color="red", alpha=0.4)
        refused.set_ylim(0, max(1, *(row["refused"] for row in r.timeline)))
        refused.set_ylabel("refused writes (bars)")
        top.set_title(f"{r.label}: writes sent each second")
        top.legend(loc="upper left")
        groups = sorted({g for row in r.timeline for g in row["cores"]},
                        key=lambda g: -sum(row["cores"].get(g, 0) for row in r.timeline))
        shown, rest = groups[:7], groups[7:]
        series = [[row["cores"].get(g, 0) for row in r.timeline] for g in shown]
        series.append([sum(row["cores"].get(g, 0) for g in rest) for row in r.timeline])
        bottom.stackplot(t, series, labels=[*shown, "the rest"])
        for row in r.timeline:
            if row["autovacuum"]:
                bottom.axvspan(row["t"] - 0.5, row["t"] + 0.5, color="black", alpha=0.08)
        bottom.set_ylabel("cores (shaded: autovacuum)")
        bottom.set_xlabel("seconds from the run's first write")
        bottom.legend(loc="upper left", fontsize="x-small", ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_json(document: dict[str, Any], out: Path) -> Path:
    path = out / "results.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    return path
