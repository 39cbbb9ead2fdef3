"""Waiting for a long-poll to block: proof that an answer came from a wake-up."""

from __future__ import annotations

import asyncio

from parley.server.store.outbox import PushOutbox

WAIT = 5.0  # seconds a fetch may take at most to look once and start waiting


async def until_long_polls(outbox: PushOutbox, count: int = 1) -> None:
    """Return once ``count`` fetches wait for an item (bounded); no guessed sleep."""
    async with asyncio.timeout(WAIT):
        while outbox.long_polls != count:
            await asyncio.sleep(0.005)
