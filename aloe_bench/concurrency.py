"""Running every item of a run as its own asyncio task (below every stage, so solvers, the engine
and the training generators share it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable


async def each_item(work: Iterable[Awaitable[None]]) -> None:
    """Every item as its own task (in-process backends batch what they ask at the same moment); if
    one raises, or this is cancelled, the others are cancelled and awaited before the error goes on."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
