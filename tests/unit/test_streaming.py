"""Stream micro-batching keeps order, never waits for a chunk to fill, and surfaces stream errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from risk_service.grpc.streaming import chunked


async def numbers(n: int, delay: float = 0.0) -> AsyncIterator[int]:
    for i in range(n):
        if delay:
            await asyncio.sleep(delay)
        yield i


def collect(source: AsyncIterator[int], size: int) -> list[list[int]]:
    async def run() -> list[list[int]]:
        return [chunk async for chunk in chunked(source, size)]

    return asyncio.run(run())


def test_chunks_keep_order_and_respect_the_size() -> None:
    chunks = collect(numbers(1000), 64)
    assert [x for c in chunks for x in c] == list(range(1000))
    assert all(1 <= len(c) <= 64 for c in chunks)
    assert len(chunks) < 1000  # items that arrived together were batched


def test_a_trickle_is_answered_item_by_item() -> None:
    chunks = collect(numbers(5, delay=0.01), 64)
    assert chunks == [[0], [1], [2], [3], [4]]


def test_an_empty_stream_yields_nothing() -> None:
    assert collect(numbers(0), 8) == []


def test_a_failing_request_stream_raises() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        collect(broken(), 8)
