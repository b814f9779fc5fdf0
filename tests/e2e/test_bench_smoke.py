"""`python -m tools.bench --smoke` end to end on the real system: every part runs and reports, nothing is
judged by its timing here (that is `make bench`), but every write must still be applied exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.pipeline.harness import prepare_pipeline

ROOT = Path(__file__).resolve().parents[2]


def _stack(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), *args], check=True, timeout=600)


def test_the_benchmark_runs_every_part_and_writes_its_report(tmp_path):
    prepare_pipeline()
    _stack("up", "web", "worker-portfolio", "worker-intel")
    try:
        proc = subprocess.run([sys.executable, "-m", "tools.bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    finally:
        _stack("stop", "web", "worker-portfolio", "worker-intel")
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    for part in ("runs", "connector_defaults", "consumer_counts", "fleet_sizes", "reads_and_writes", "replay"):
        assert doc[part], part
    assert doc["warmup"]["acknowledged"] > 0 and doc["warmup"]["checks"]["exactly_once"], doc["warmup"]
    run = doc["runs"][0]
    assert run["acknowledged"] > 0 and run["timed"] == run["acknowledged"], run
    assert run["checks"]["exactly_once"] and run["checks"]["portfolio_mismatches"] == 0
    assert {"web", "kafka", "connect", "postgres:hashinsight_worker", "load generator"} <= set(run["cpu_ms_per_write"])
    assert doc["replay"]["bypass_inbox"]["applied"] == doc["replay"]["events"]
    for plot in ("latency-cdf.png", "stages.png", "timeline.png"):
        assert (tmp_path / plot).stat().st_size > 0, plot
    # The run second by second: every write sent is in one second, and the machine's cores are read beside it.
    assert sum(row["sent"] for row in run["timeline"]) == run["offered"], run["timeline"]
    assert any(row["cores"].get("web", 0) > 0 for row in run["timeline"]), run["timeline"]
    assert run["worst_seconds"] and "timeline" not in run["checks"], run["checks"]
    assert "Worst seconds of each run" in proc.stdout
    # Each run says how fast the machine was while it ran, so CPU figures of different hours can be told apart.
    assert all(s["speed_probe_ms"] > 0 for s in doc["runs"] + doc["connector_defaults"] + [doc["warmup"]]), doc["runs"]
    assert "speed probe" in proc.stdout
