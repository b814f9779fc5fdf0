"""The short fault-injection run (`python -m tools.chaos --short`) on the real stack, web and workers.

Its own checks are the verdict (exit code 0): nothing acknowledged lost, nothing applied twice, every portfolio
equal to a recomputation, only the deliberately poisoned record on the DLQ, no 500, and health ok within 30 s
of each fault ending. The table it prints is kept in the test's output. `make chaos` is the long form.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.pipeline.harness import prepare_pipeline

ROOT = Path(__file__).resolve().parents[2]
WORKER_LOGS = ("worker-portfolio-1", "worker-intel-1")


def _tail(text: str, lines: int) -> str:
    """The last `lines` lines, without librdkafka's connection chatter (a '%' line per refused reconnect)."""
    return "\n".join([line for line in text.splitlines() if not line.startswith("%")][-lines:])


def _worker_logs() -> str:
    """The workers' last lines: what the consumers said about rebalances, retries and stalls."""
    out = []
    for name in WORKER_LOGS:
        log = ROOT / ".stack" / "logs" / f"{name}.log"
        if log.exists():
            out.append(f"--- {name}.log\n" + _tail(log.read_text(errors="replace"), 40))
    return "\n".join(out)


def _stack(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "infra" / "stack.sh"), *args], check=True, timeout=600)


def test_the_system_heals_itself_under_faults(tmp_path):
    prepare_pipeline()
    out = tmp_path / "chaos.json"
    try:
        proc = subprocess.run([sys.executable, "-m", "tools.chaos", "--short", "--json", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    finally:
        # Leave the stack as the rest of the suite expects it: services up, no web or workers.
        _stack("up")
        _stack("stop", "web", "worker-portfolio", "worker-intel")
    print(proc.stdout)
    assert proc.returncode == 0, "\n".join([_tail(proc.stdout, 60), _tail(proc.stderr, 30), _worker_logs()])
    result = json.loads(out.read_text())
    assert result["passed"] and len(result["faults"]) == 11
    assert result["figures"]["writes_acknowledged"] > 0 and result["figures"]["lost_writes"] == []
