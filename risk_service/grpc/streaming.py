"""Micro-batching of request streams: score what has arrived together, keep the order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def chunked(source: AsyncIterator[T], max_size: int) -> AsyncIterator[list[T]]:
    """Yields lists of the items already received (at least one, at most max_size), in order.

    A bulk feed then costs one screening and one store commit per chunk instead of per item,
    while a slow trickle is still answered item by item without waiting for a chunk to fill.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max_size * 2)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put(item)
        finally:
            await queue.put(_END)

    task = asyncio.create_task(pump())
    try:
        ended = False
        while not ended:
            first = await queue.get()
            if first is _END:
                break
            batch: list[T] = [first]  # type: ignore[list-item]
            while len(batch) < max_size and not queue.empty():
                item = queue.get_nowait()
                if item is _END:
                    ended = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            yield batch
        await task  # re-raises a failure of the request stream
    finally:
        task.cancel()
