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


def seqs_by_text(log: dict[int, str]) -> dict[str, list[int]]:
    """text -> every seq the log holds it under: a post stored twice has two."""
    held: dict[str, list[int]] = {}
    for seq in sorted(log):
        held.setdefault(log[seq], []).append(seq)
    return held


def assert_stored_once_at_ack(log: dict[int, str], acks: dict[str, int]) -> None:
    """Each acknowledged text is in the log once, under the seq it was acknowledged
    with, and no text is in it twice."""
    held = seqs_by_text(log)
    for text, seq in acks.items():
        assert held.get(text) == [seq], f"{text} acknowledged at {seq}, stored at {held.get(text)}"
    twice = {text: seqs for text, seqs in held.items() if len(seqs) > 1}
    assert not twice, f"stored twice: {twice}"
