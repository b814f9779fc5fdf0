"""The web's pipelined Redis connection (app/adapters/redis_pipeline.py) against the real Redis: concurrent
callers share one connection and each gets its own reply; a lost connection, a silent Redis, an unknown script
and an error reply each end the way the limiter and the cache expect."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis

from app.adapters.redis_pipeline import PipelinedRedis


def _pipe(client: redis.Redis, **settings: Any) -> PipelinedRedis:
    """A pipelined connection to the Redis `client` talks to."""
    kw = client.connection_pool.connection_kwargs
    return PipelinedRedis(host=kw["host"], port=kw["port"], db=kw.get("db", 0), **settings)


def _connections_named(client: redis.Redis, name: str) -> int:
    return sum(1 for c in client.client_list() if c.get("name") == name)


def test_concurrent_callers_share_one_connection_and_each_gets_its_own_reply(client: redis.Redis,
                                                                            prefix: str) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    pipe = _pipe(client, client_name=name)
    many = 640

    async def scenario() -> tuple[list[Any], int]:
        replies = await asyncio.gather(*[pipe.execute("INCR", prefix + "n") for _ in range(many)],
                                       pipe.mget([prefix + "n", prefix + "none"]))
        connections = await asyncio.to_thread(_connections_named, client, name)
        await pipe.aclose()
        return replies, connections

    replies, connections = asyncio.run(scenario())
    assert sorted(replies[:many]) == list(range(1, many + 1))
    assert replies[many] == [str(many), None]
    assert connections == 1


def test_a_connection_redis_drops_is_replaced_and_the_call_goes_through(client: redis.Redis, prefix: str) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    pipe = _pipe(client, client_name=name)

    async def scenario() -> list[Any]:
        first = await pipe.execute("SET", prefix + "k", "v1")
        for c in await asyncio.to_thread(client.client_list):
            if c.get("name") == name:
                await asyncio.to_thread(client.client_kill, c["addr"])
        await asyncio.sleep(0.05)
        second = await pipe.execute("GET", prefix + "k")
        await pipe.aclose()
        return [first, second]

    assert asyncio.run(scenario()) == ["OK", "v1"]


def test_a_reply_that_does_not_come_drops_the_connection_so_no_later_call_gets_it(client: redis.Redis,
                                                                                  prefix: str) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    pipe = _pipe(client, socket_timeout=0.2, client_name=name)

    async def scenario() -> tuple[float, Any, Any]:
        started = time.perf_counter()
        with pytest.raises(redis.exceptions.TimeoutError):
            await pipe.execute("BLPOP", prefix + "empty", 2)  # Redis answers only after 2 s
        waited = time.perf_counter() - started
        # Once Redis has seen the dropped connection go, nothing is left to pop what is pushed next.
        for _ in range(100):
            if not await asyncio.to_thread(_connections_named, client, name):
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(client.rpush, prefix + "empty", "late")
        ping = await pipe.execute("PING")
        left = await pipe.execute("LRANGE", prefix + "empty", 0, -1)
        await pipe.aclose()
        return waited, ping, left

    waited, ping, left = asyncio.run(scenario())
    assert waited < 1.0
    assert ping == "PONG"
    assert left == ["late"]  # the abandoned BLPOP went with its connection and popped nothing


def test_a_script_redis_does_not_know_is_sent_in_full_and_then_by_its_digest(client: redis.Redis,
                                                                             prefix: str) -> None:
    pipe = _pipe(client)
    script = pipe.register_script(f"-- {prefix}\nreturn {{KEYS[1], tonumber(ARGV[1]) + 1}}")

    async def scenario() -> list[Any]:
        out = [await script(keys=[prefix + "a"], args=[41])]
        assert client.script_exists(script.sha) == [True]
        out.append(await script(keys=[prefix + "b"], args=[1]))
        await pipe.aclose()
        return out

    assert asyncio.run(scenario()) == [[prefix + "a", 42], [prefix + "b", 2]]


def test_an_error_reply_is_raised_for_its_command_only(client: redis.Redis, prefix: str) -> None:
    pipe = _pipe(client)
    client.set(prefix + "s", "text")

    async def scenario() -> list[Any]:
        out = await asyncio.gather(pipe.execute("INCR", prefix + "s"), pipe.execute("PING"), return_exceptions=True)
        await pipe.aclose()
        return out

    error, ping = asyncio.run(scenario())
    assert type(error) is redis.exceptions.ResponseError and "not an integer" in str(error)
    assert ping == "PONG"


def test_no_redis_fails_fast_as_a_connection_error() -> None:
    pipe = PipelinedRedis(host="127.0.0.1", port=1, connect_timeout=0.5)

    async def scenario() -> float:
        started = time.perf_counter()
        for _ in range(3):
            with pytest.raises(redis.exceptions.ConnectionError):
                await pipe.execute("PING")
        return time.perf_counter() - started

    assert asyncio.run(scenario()) < 2


def test_a_setup_redis_refuses_is_a_connection_error(client: redis.Redis) -> None:
    pipe = _pipe(client, password="not-the-password")

    async def scenario() -> None:
        with pytest.raises(redis.exceptions.ConnectionError, match="refused the connection's setup"):
            await pipe.execute("PING")

    asyncio.run(scenario())


def test_the_database_of_the_url_is_selected(client: redis.Redis, prefix: str) -> None:
    kw = client.connection_pool.connection_kwargs
    other = (kw.get("db", 0) + 1) % 16
    pipe = PipelinedRedis(host=kw["host"], port=kw["port"], db=other)
    elsewhere = redis.Redis(host=kw["host"], port=kw["port"], db=other, decode_responses=True)

    async def scenario() -> None:
        await pipe.execute("SET", prefix + "db", "here", "EX", 60)
        await pipe.aclose()

    try:
        asyncio.run(scenario())
        assert elsewhere.get(prefix + "db") == "here" and client.get(prefix + "db") is None
    finally:
        elsewhere.delete(prefix + "db")
        elsewhere.close()


def test_a_setup_that_does_not_finish_in_time_leaves_no_connection_behind(client: redis.Redis) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    pipe = _pipe(client, client_name=name, connect_timeout=0.2)

    async def scenario() -> None:
        client.execute_command("CLIENT", "PAUSE", 600, "ALL")  # Redis accepts the connection, answers nothing
        with pytest.raises(redis.exceptions.ConnectionError, match="TimeoutError"):
            await pipe.execute("PING")

    asyncio.run(scenario())
    time.sleep(0.7)  # the pause is over: a connection left open would now have its name
    assert _connections_named(client, name) == 0
