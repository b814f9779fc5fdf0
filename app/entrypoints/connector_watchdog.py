"""`python -m app.entrypoints.connector_watchdog`: the supervised process that restarts failed connector tasks.

infra/stack.sh runs it beside Kafka Connect (program connect-watchdog); docker-compose.yml as its own service.
CONNECTOR_WATCH_INTERVAL (seconds, default 5) sets how often it looks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from app.adapters.kafka_connect import ConnectClient
from app.config import get_settings
from app.service_layer.connector_watchdog import ConnectorWatchdog
from app.service_layer.health import CONNECTOR_NAME


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    interval = float(os.environ.get("CONNECTOR_WATCH_INTERVAL", "5"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watchdog = ConnectorWatchdog(ConnectClient(get_settings().connect_url, timeout=5.0), CONNECTOR_NAME)
    logging.getLogger("hashinsight.connector-watchdog").info(
        "watching connector %s at %s every %.0f s", CONNECTOR_NAME, get_settings().connect_url, interval)
    while not stop.is_set():
        watchdog.check()
        stop.wait(interval)


if __name__ == "__main__":
    main()
