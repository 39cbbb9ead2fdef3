"""The automatic hold over real sockets, on both stores: a public comment reported
by hold_after_reports distinct members is hidden pending review, live and in
history, and shown again if the moderators dismiss the reports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parley.client import ParleyClient
from tests.server.conftest import RunningHub, start_hub, stop_hub

WORDS = "Virement Interac seulement, écrivez-moi"


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, hold_after_reports=2)
    try:
        yield running
    finally:
        await stop_hub(running)


async def next_of(client: ParleyClient, room: str, kind: str) -> dict[str, object]:
    while True:
        event = await client.next_event(room=room)
        if event["event"] == kind:
            return event


async def test_a_comment_reported_by_enough_members_is_held_then_shown_again_if_dismissed(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann, cat, dan = [await hub.client(u) for u in ("bob", "ann", "cat", "dan")]
    await dan.subscribe("listing:L1")
    seq = (await bob.post("listing:L1", WORDS))["seq"]
    first = await ann.report("listing:L1", seq, "scam")
    [message] = (await dan.history("listing:L1"))["messages"]
    assert message["text"] == WORDS  # one report: still shown
    await cat.report("listing:L1", seq, "off_platform")
    held = await next_of(dan, "listing:L1", "message_held")
    assert held["target"] == seq
    [message] = (await dan.history("listing:L1"))["messages"]
    assert message["held"] is True and message["text"] == "" and "deleted" not in message
    # A member resuming from before it replays it hidden, then the hold.
    late = await hub.client("eve")
    missed = (await late.subscribe("listing:L1", since=0))["missed"]
    assert [e["event"] for e in missed] == ["message", "message_held"]
    assert missed[0]["text"] == "" and missed[0]["held"] is True
    # The moderators still see it in the queue.
    status, reply = await hub.api("GET", f"/v1/reports/{first['report']}")
    assert status == 200 and reply["report"]["message"]["text"] == WORDS
    # Dismissed: shown again, live and in history.
    status, _ = await hub.api(
        "POST", f"/v1/reports/{first['report']}/resolve", {"action": "dismiss"}
    )
    assert status == 200
    released = await next_of(dan, "listing:L1", "message_released")
    assert released["target"] == seq
    [message] = (await dan.history("listing:L1"))["messages"]
    assert message["text"] == WORDS and "held" not in message
    # A later report of the same comment does not hide it again.
    await dan.report("listing:L1", seq, "spam")
    [message] = (await dan.history("listing:L1"))["messages"]
    assert message["text"] == WORDS


async def test_a_held_comment_removed_is_a_tombstone(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann, cat = [await hub.client(u) for u in ("bob", "ann", "cat")]
    seq = (await bob.post("listing:L1", WORDS))["seq"]
    await ann.report("listing:L1", seq, "scam")
    report = await cat.report("listing:L1", seq, "scam")
    body = {"action": "remove_message", "statement": "Scam."}
    status, _ = await hub.api("POST", f"/v1/reports/{report['report']}/resolve", body)
    assert status == 200
    [message] = (await ann.history("listing:L1"))["messages"]
    assert message["removed"] is True and message["deleted"] is True and "held" not in message
    entries = await hub.app.store.entries_after("listing:L1", 0, 10)
    assert [e.kind for e in entries] == ["comment", "hold", "remove"]
    assert all("Interac" not in e.text for e in entries)


async def test_an_order_rooms_messages_are_never_held(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    sam, bea = await hub.client("sam"), await hub.client("bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    seq = (await sam.post("order:O1", "Payez-moi ailleurs"))["seq"]
    await bea.report("order:O1", seq, "scam")
    messages = (await bea.history("order:O1"))["messages"]
    assert "Payez-moi ailleurs" in [m["text"] for m in messages]


async def test_the_hold_is_off_unless_configured(store_url: str) -> None:
    running = await start_hub(store_url)
    try:
        await running.listing("L1", seller="sam")
        bob = await running.client("bob")
        seq = (await bob.post("listing:L1", WORDS))["seq"]
        for reporter in ("ann", "cat", "dan", "eve"):
            await (await running.client(reporter)).report("listing:L1", seq, "spam")
        [message] = (await bob.history("listing:L1"))["messages"]
        assert message["text"] == WORDS and "held" not in message
    finally:
        await stop_hub(running)
