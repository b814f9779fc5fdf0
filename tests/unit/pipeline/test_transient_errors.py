"""Which failures the consumer loop retries without limit (transient) and which it counts towards the DLQ."""

from __future__ import annotations

import errno

import httpx
import psycopg2
import pytest
import redis
import requests
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from sqlalchemy import exc as sa_exc

from app.adapters.envelope_codec import EnvelopeError
from app.adapters.redis_lock import LockNotAcquired
from app.adapters.transient import is_transient


class _PgError(psycopg2.Error):
    def __init__(self, pgcode: str) -> None:
        super().__init__("boom")
        self._code = pgcode

    @property
    def pgcode(self) -> str:  # psycopg2's own attribute is read-only
        return self._code


def _dbapi(cls: type[sa_exc.DBAPIError], orig: BaseException, invalidated: bool = False) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)


TRANSIENT = [
    _dbapi(sa_exc.OperationalError, psycopg2.OperationalError("the database system is shutting down")),
    _dbapi(sa_exc.InterfaceError, psycopg2.InterfaceError("connection already closed")),
    _dbapi(sa_exc.DBAPIError, psycopg2.DatabaseError("server closed the connection"), invalidated=True),
    _dbapi(sa_exc.DBAPIError, _PgError("40P01")),  # deadlock
    _dbapi(sa_exc.DBAPIError, _PgError("55P03")),  # lock_timeout
    sa_exc.TimeoutError("QueuePool limit reached"),
    psycopg2.OperationalError("could not connect to server"),
    redis.ConnectionError("Connection refused"),
    redis.TimeoutError("Timeout reading from socket"),
    redis.BusyLoadingError("Redis is loading the dataset in memory"),
    httpx.ConnectError("All connection attempts failed"),
    httpx.ReadTimeout("timed out"),
    requests.ConnectionError("refused"),
    SchemaRegistryError(503, 50301, "unavailable"),
    SchemaRegistryError(500, 50001, "internal"),
    KafkaException(KafkaError(KafkaError._TRANSPORT)),
    KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)),
    KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)),
    KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)),
    LockNotAcquired("lock:recalc:u1 still held"),
    TimeoutError("dead letter not delivered in 30s"),
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    BufferError("Local: Queue full"),
]

PERMANENT = [
    EnvelopeError("unknown event kind"),
    ValueError("a bug"),
    KeyError("missing"),
    _dbapi(sa_exc.IntegrityError, _PgError("23505")),
    _dbapi(sa_exc.DataError, _PgError("22P05")),  # untranslatable character (a NUL byte)
    _dbapi(sa_exc.ProgrammingError, _PgError("42P01")),
    SchemaRegistryError(404, 40403, "schema not found"),
    SchemaRegistryError(422, 42201, "invalid schema"),
    KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)),
    KafkaException(KafkaError(KafkaError._FATAL, fatal=True)),
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: f"{type(e).__name__}:{str(e)[:40]}")
def test_transient_failures_are_retried_without_limit(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: f"{type(e).__name__}:{str(e)[:40]}")
def test_other_failures_count_towards_the_dead_letter_topic(exc):
    assert not is_transient(exc)
