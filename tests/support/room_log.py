"""Reading a room back in tests that restart or fault hubs: the whole stored
log, and a watcher that records every message event it gets."""

from __future__ import annotations

from typing import Any

from parley.client import ParleyClient


async def whole_log(reader: ParleyClient, room: str) -> dict[int, str]:
    """seq -> text of every message stored in ``room``."""
    stored: dict[int, str] = {}
    before = None
    for _ in range(1000):  # bounded pagination
        page = await reader.history(room, before=before, limit=100)
        stored |= {m["seq"]: m["text"] for m in page["messages"]}
        if not page["more"]:
            break
        before = page["messages"][-1]["seq"]
    return stored


async def watch(client: ParleyClient, seen: list[dict[str, Any]], timeout: float = 60) -> None:
    """Append every ``message`` and ``reload`` event ``client`` gets to ``seen``."""
    for _ in range(100_000):  # bounded: far more events than posts
        event = await client.next_event(timeout=timeout)
        if event["event"] in ("message", "reload"):
            seen.append(event)
