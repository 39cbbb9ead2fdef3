"""Restrictions over real sockets: read-only refuses writes and says until when,
suspended closes every connection (4010) and refuses connects, lifting applies at
once; on both stores, and across two hubs sharing one Redis (docs/moderation.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from parley.server.core.clock import FakeClock
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.redis_server import RedisServer

HOUR_MS = 3_600_000


@pytest.fixture
async def hub(store_url: str, clock: FakeClock) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, clock=clock)
    try:
        yield running
    finally:
        await stop_hub(running)


def now_ms(clock: FakeClock) -> int:
    return int(clock.now() * 1000)


async def restrict(hub: RunningHub, user: str, **body: Any) -> dict[str, Any]:
    status, reply = await hub.api(
        "PUT", f"/v1/users/{user}/restriction", {"reason": "Repeated scams.", **body}
    )
    assert status == 200, reply
    return reply  # type: ignore[no-any-return]


async def closed_with(client: ParleyClient) -> int | None:
    while True:
        event = await client.next_event()
        if event["event"] == "closed":
            return event["code"]  # type: ignore[no-any-return]


async def test_a_read_only_member_reads_but_every_write_says_until_when(
    hub: RunningHub, clock: FakeClock
) -> None:
    await hub.listing("L1", seller="sam", offers_enabled=True)
    bob, ann = await hub.client("bob"), await hub.client("ann")
    seq = (await bob.post("listing:L1", "Avant la restriction"))["seq"]
    await ann.post("listing:L1", "Bonjour")
    until = now_ms(clock) + HOUR_MS
    reply = await restrict(hub, "bob", kind="read_only", until=until)
    assert reply["restriction"]["kind"] == "read_only" and reply["restriction"]["until"] == until
    for attempt in (
        bob.post("listing:L1", "Après"),
        bob.edit("listing:L1", seq, "modifié"),
        bob.offer_make("L1", 4000),
        bob.report("listing:L1", seq + 1, "spam"),
    ):
        with pytest.raises(ParleyError) as refused:
            await attempt
        assert refused.value.code == "restricted"
        assert refused.value.details == {"kind": "read_only", "until": until}
    # Reading, watching, deleting one's own words, blocking: still there.
    await bob.subscribe("listing:L1")
    assert len((await bob.history("listing:L1"))["messages"]) == 2
    await bob.block("ann")
    await bob.delete("listing:L1", seq)
    # The member is told, in the inbox.
    notices = [n["notification"] for n in (await bob.notifications())["notifications"]]
    assert {
        "kind": "moderation",
        "action": "member_restricted",
        "restriction": "read_only",
        "until": until,
        "statement": "Repeated scams.",
    } in notices
    # It ends at until, on the injected clock.
    clock.advance(HOUR_MS / 1000)
    assert (await bob.post("listing:L1", "De retour"))["seq"] > seq


async def test_lifting_a_restriction_applies_at_once(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob = await hub.client("bob")
    await restrict(hub, "bob", kind="read_only")  # no until: until lifted
    status, current = await hub.api("GET", "/v1/users/bob/restriction")
    assert status == 200 and current["restriction"]["until"] is None
    with pytest.raises(ParleyError):
        await bob.post("listing:L1", "Refusé")
    status, lifted = await hub.api("DELETE", "/v1/users/bob/restriction")
    assert status == 200 and lifted == {"user_id": "bob", "lifted": True}
    await bob.post("listing:L1", "Accepté")
    again = await hub.api("DELETE", "/v1/users/bob/restriction")
    assert again == (200, {"user_id": "bob", "lifted": False})
    status, none = await hub.api("GET", "/v1/users/bob/restriction")
    assert status == 404 and none["error"]["code"] == "not_found"


async def test_a_suspended_member_is_disconnected_and_cannot_connect_until_it_ends(
    hub: RunningHub, clock: FakeClock
) -> None:
    phone, laptop, ann = await hub.client("bob"), await hub.client("bob"), await hub.client("ann")
    until = now_ms(clock) + 24 * HOUR_MS
    await restrict(hub, "bob", kind="suspended", until=until)
    assert await closed_with(phone) == 4010
    assert await closed_with(laptop) == 4010
    with pytest.raises(ParleyError) as refused:
        await hub.client("bob")
    assert refused.value.code == "restricted"
    assert refused.value.details == {"kind": "suspended", "until": until}
    assert (await ann.request("ping"))["ts"] > 0  # the others stay
    clock.advance(24 * 3600)
    assert (await hub.client("bob")).user["id"] == "bob"


async def test_a_restriction_survives_a_hub_restart(store_url: str, clock: FakeClock) -> None:
    first = await start_hub(store_url, clock=clock)
    try:
        await restrict(first, "bob", kind="suspended")
    finally:
        await stop_hub(first)
    second = await start_hub(store_url, clock=clock)
    try:
        with pytest.raises(ParleyError) as refused:
            await second.client("bob")
        assert refused.value.code == "restricted"
    finally:
        await stop_hub(second)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "banned", "reason": "x"},
        {"kind": "read_only"},
        {"kind": "read_only", "reason": ""},
        {"kind": "read_only", "reason": "x" * 501},
        {"kind": "read_only", "reason": "x", "until": 1},  # in the past
        {"kind": "read_only", "reason": "x", "until": "tomorrow"},
        {"kind": "read_only", "reason": "x", "until": True},
    ],
    ids=repr,
)
async def test_a_malformed_restriction_is_refused(hub: RunningHub, body: dict[str, Any]) -> None:
    bob = await hub.client("bob")
    status, reply = await hub.api("PUT", "/v1/users/bob/restriction", body)
    assert status == 400 and reply["error"]["code"] == "bad_request"
    assert (await bob.request("ping"))["ts"] > 0


async def test_a_report_resolved_by_restricting_its_author(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann = await hub.client("bob"), await hub.client("ann")
    seq = (await bob.post("listing:L1", "Arnaque"))["seq"]
    report_id = (await ann.report("listing:L1", seq, "scam"))["report"]
    body = {
        "action": "restrict_member",
        "restriction": {"kind": "suspended", "reason": "Scam attempts."},
    }
    status, reply = await hub.api("POST", f"/v1/reports/{report_id}/resolve", body)
    assert status == 200, reply
    assert reply["report"]["resolution"]["restriction"] == {
        "kind": "suspended", "until": None, "reason": "Scam attempts.",
    }  # fmt: skip
    assert await closed_with(bob) == 4010
    no_body = await hub.api("POST", f"/v1/reports/{report_id}/resolve", {"action": "dismiss"})
    assert no_body[0] == 409


async def test_restrictions_apply_across_two_hubs_at_once(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    redis_server.start()
    await redis_server.flushall()
    one = await start_hub(redis_server.url, clock=clock)
    two = await start_hub(redis_server.url, clock=clock)
    try:
        await one.listing("L1", seller="sam")
        on_one, on_two = await one.client("bob"), await two.client("bob")
        # read_only, put through the first hub's API: the second refuses at once.
        await restrict(one, "bob", kind="read_only")
        with pytest.raises(ParleyError) as refused:
            await on_two.post("listing:L1", "Refusé ailleurs")
        assert refused.value.code == "restricted"
        # Lifted through the second: the first takes posts at once.
        status, _ = await two.api("DELETE", "/v1/users/bob/restriction")
        assert status == 200
        await on_one.post("listing:L1", "Accepté")
        # Suspended through the second: both hubs close bob's connections.
        await restrict(two, "bob", kind="suspended")
        assert await closed_with(on_one) == 4010
        assert await closed_with(on_two) == 4010
        with pytest.raises(ParleyError):
            await one.client("bob")
        status, _ = await one.api("DELETE", "/v1/users/bob/restriction")
        assert (await two.client("bob")).user["id"] == "bob"
    finally:
        await stop_hub(two)
        await stop_hub(one)
