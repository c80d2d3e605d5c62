"""``domain.redis_turns.TurnPipeline``: the calls of one event-loop turn go to Redis together,
and each still gets its own reply or error (real Redis)."""

import asyncio
import uuid

import pytest
import redis.asyncio
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from domain.redis_turns import TurnPipeline


def _named_client(name: str, url: str | None = None) -> "redis.asyncio.Redis":
    return redis.asyncio.Redis.from_url(url or settings.REDIS_URL, client_name=name)


async def _connections_named(name: str) -> int:
    observer = redis.asyncio.Redis.from_url(settings.REDIS_URL)
    try:
        clients = await observer.client_list()
    finally:
        await observer.aclose()
    return sum(1 for c in clients if c["name"] == name)


@pytest.mark.asyncio
async def test_the_calls_of_one_turn_share_one_round_trip_and_each_gets_its_reply() -> None:
    name = f"turns-{uuid.uuid4().hex[:8]}"
    client = _named_client(name)
    turns = TurnPipeline(client)
    try:
        replies = await asyncio.gather(
            *(turns.eval("return ARGV[1] * 2", 0, n) for n in range(300))
        )
        assert replies == [2 * n for n in range(300)]
        # 300 calls at once on a plain client open up to 300 connections; queued per turn,
        # they went down one.
        assert await _connections_named(name) == 1
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_failing_script_fails_only_its_own_call() -> None:
    client = _named_client("turns-errors")
    turns = TurnPipeline(client)
    try:
        replies = await asyncio.gather(
            turns.eval("return 1", 0),
            turns.eval("return redis.error_reply('refused here')", 0),
            turns.eval("return KEYS[1]", 1, "k"),
            return_exceptions=True,
        )
    finally:
        await client.aclose()
    assert replies[0] == 1
    assert isinstance(replies[1], ResponseError)
    assert "refused here" in str(replies[1])
    assert replies[2] == b"k"


@pytest.mark.asyncio
async def test_an_unreachable_redis_fails_every_call_of_the_turn() -> None:
    client = _named_client("turns-down", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    turns = TurnPipeline(client)
    try:
        replies = await asyncio.gather(
            *(turns.eval("return 1", 0) for _ in range(3)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert all(isinstance(r, RedisConnectionError) for r in replies), replies


@pytest.mark.asyncio
async def test_a_cancelled_caller_leaves_the_others_their_replies() -> None:
    client = _named_client("turns-cancel")
    turns = TurnPipeline(client)
    try:
        left = asyncio.ensure_future(turns.eval("return 'left'", 0))
        stays = asyncio.ensure_future(turns.eval("return 'stays'", 0))
        await asyncio.sleep(0)  # both queued; the turn's pipeline is not sent yet
        left.cancel()
        assert await stays == b"stays"
        assert left.cancelled()
    finally:
        await client.aclose()
