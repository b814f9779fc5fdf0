"""The health probe runner never deadlocks on a probe that finishes before its callback is attached."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from app.service_layer.health import ProbeResult, ProbeRunner


class _InstantExecutor:
    """Runs the probe at once, so its future is done before the runner attaches the done callback."""

    def submit(self, fn, *args):
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def test_an_instant_probe_answers_instead_of_deadlocking() -> None:
    runner = ProbeRunner(workers=1)
    runner._executor = _InstantExecutor()  # type: ignore[assignment]
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(runner.run({"x": (lambda: ProbeResult(True, "ok"), 1.0)},
                                                                   budget=1.0)))
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "the runner deadlocked on its own mutex"
    assert out["x"].ok and out["x"].detail == "ok"
    # and the cached answer is served on the next run
    assert runner.run({"x": (lambda: ProbeResult(False, "not called"), 1.0)}, budget=1.0)["x"].detail == "ok"
