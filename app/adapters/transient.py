"""Which failures clear by themselves once a dependency is back, for every client this system uses.

The consumer loop retries these without limit (with its partitions paused); the API answers them with 503 and
Retry-After instead of 500 (app/entrypoints/http/problems.py). Everything else is a real error: the loop counts
it towards the dead-letter topic, the API answers 500.
"""

from __future__ import annotations

import errno

import httpx
import psycopg2
import redis
import requests
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from sqlalchemy import exc as sa_exc

from app.adapters.redis_lock import LockNotAcquired

_PG_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "57P01", "57P02", "57P03",  # admin_shutdown, crash_shutdown, cannot_connect_now
    "53300",  # too_many_connections
}
_KAFKA_TRANSIENT_CODES = {
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT,
    KafkaError._WAIT_COORD, KafkaError._RESOLVE, KafkaError._QUEUE_FULL, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.NETWORK_EXCEPTION,
}
_OS_TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH}


def is_transient(exc: BaseException) -> bool:
    """True for failures that clear by themselves once a dependency is back: retry without limit."""
    if isinstance(exc, LockNotAcquired | redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError):
        return True
    if isinstance(exc, redis.ResponseError) and str(exc).startswith(("LOADING", "TRYAGAIN", "CLUSTERDOWN")):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return getattr(exc.orig, "pgcode", None) in _PG_TRANSIENT_SQLSTATES
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):  # pool exhausted / reconnect failed
        return True
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    if isinstance(exc, psycopg2.Error):
        return getattr(exc, "pgcode", None) in _PG_TRANSIENT_SQLSTATES
    if isinstance(exc, httpx.TransportError | requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, SchemaRegistryError):
        status = exc.http_status_code
        return status is None or status < 0 or status >= 500 or status == 429
    if isinstance(exc, KafkaException):
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        return err is not None and not err.fatal() and (err.retriable() or err.code() in _KAFKA_TRANSIENT_CODES)
    if isinstance(exc, ConnectionError | TimeoutError | BufferError):
        return True
    return isinstance(exc, OSError) and exc.errno in _OS_TRANSIENT_ERRNOS
