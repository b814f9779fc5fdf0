"""Every worker's handler by short name (the tools' --consumer argument)."""

from __future__ import annotations

from collections.abc import Callable

from workers.consumer_loop import Handler
from workers.intel_consumer import IntelHandler
from workers.portfolio_consumer import PortfolioHandler

HANDLERS: dict[str, Callable[[], Handler]] = {
    "portfolio": PortfolioHandler,
    "intel": IntelHandler,
}
