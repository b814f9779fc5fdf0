"""Process lifetime on Linux: a child that dies with its parent.

uvicorn's worker processes outlive a SIGKILLed master: they keep the listening socket, so the master that the
process supervisor starts again cannot bind its port and crash-loops. Asking the kernel to signal a worker when
its parent dies (PR_SET_PDEATHSIG) closes that gap.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have `sig` delivered to this process when its parent exits. False where the kernel cannot do it."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return False
    except (OSError, AttributeError) as exc:
        log.warning("prctl unavailable: %s", exc)
        return False
    # The parent may have died before the request took effect; then nobody will signal us.
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True
