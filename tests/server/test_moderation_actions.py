"""The moderators' actions over real sockets, on both stores: a removed message is a
tombstone for everyone, live and in history, its words erased; its author is told
why in their language; a report is resolved once (docs/moderation.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from parley.client import ParleyClient
from tests.server.conftest import RunningHub, start_hub, stop_hub

STATEMENT = {
    "fr-CA": "Votre message a été retiré : il proposait un paiement hors de la plateforme.",
    "en": "Your message was removed: it offered a payment outside the platform.",
}


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url)
    try:
        yield running
    finally:
        await stop_hub(running)


async def member(hub: RunningHub, user_id: str, locale: str = "en") -> ParleyClient:
    status, reply = await hub.api(
        "PUT", f"/v1/users/{user_id}", {"name": user_id, "locale": locale}
    )
    assert status == 200, reply
    return await hub.client(user_id, locale=locale)


async def remove(hub: RunningHub, room: str, seq: int, **body: Any) -> tuple[int, Any]:
    body = {"reason": "off_platform", "statement": STATEMENT, **body}
    return await hub.api("POST", f"/v1/rooms/{room}/messages/{seq}/remove", body)


async def moderation_notices(client: ParleyClient) -> list[dict[str, Any]]:
    reply = await client.notifications()
    found = [n["notification"] for n in reversed(reply["notifications"])]
    return [n for n in found if n["kind"] == "moderation"]


async def test_a_removed_message_is_a_tombstone_for_everyone_live_and_in_history(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob = await member(hub, "ann"), await member(hub, "bob")
    for client in (ann, bob):
        await client.subscribe("listing:L1")
    seq = (await bob.post("listing:L1", "Payez par virement à bob@example.com"))["seq"]
    await bob.edit("listing:L1", seq, "Payez par virement, écrivez-moi")
    for client in (ann, bob):
        assert (await client.next_event(room="listing:L1"))["event"] == "message"
        assert (await client.next_event(room="listing:L1"))["event"] == "message_edited"
    status, reply = await remove(hub, "listing:L1", seq)
    assert status == 200 and reply == {
        "room": "listing:L1", "seq": seq, "removed": True, "duplicate": False,
    }  # fmt: skip
    for client in (ann, bob):
        event = await client.next_event(room="listing:L1")
        assert event["event"] == "message_removed" and event["target"] == seq
        [message] = (await client.history("listing:L1"))["messages"]
        assert message["text"] == "" and message["deleted"] is True and message["removed"]
    # Resuming from before it replays the message, its edit and its removal, all blank.
    late = await member(hub, "cat")
    missed = (await late.subscribe("listing:L1", since=0))["missed"]
    assert [e["event"] for e in missed] == ["message", "message_edited", "message_removed"]
    assert all(not e.get("text") for e in missed)
    # The words are gone from the store, as a member's delete erases them.
    entries = await hub.app.store.entries_after("listing:L1", 0, 10)
    assert all("virement" not in e.text for e in entries)


async def test_the_author_is_told_why_in_their_language(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob, zoe = await member(hub, "bob"), await member(hub, "zoe", locale="fr-CA")
    bob_seq = (await bob.post("listing:L1", "Spam spam spam"))["seq"]
    zoe_seq = (await zoe.post("listing:L1", "Écrivez-moi ailleurs"))["seq"]
    await remove(hub, "listing:L1", bob_seq)
    await remove(hub, "listing:L1", zoe_seq)
    [to_bob] = await moderation_notices(bob)
    [to_zoe] = await moderation_notices(zoe)
    assert to_bob == {
        "kind": "moderation",
        "action": "message_removed",
        "room": "listing:L1",
        "seq": bob_seq,
        "reason": "off_platform",
        "statement": STATEMENT["en"],
    }
    assert to_zoe["statement"] == STATEMENT["fr-CA"] and to_zoe["seq"] == zoe_seq
    # One text for every language is given as is.
    seq = (await bob.post("listing:L1", "Encore du spam"))["seq"]
    await remove(hub, "listing:L1", seq, reason="spam", statement="Spam repeated.")
    assert (await moderation_notices(bob))[-1]["statement"] == "Spam repeated."


async def test_a_removal_retried_removes_once_and_tells_once(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob = await member(hub, "bob")
    seq = (await bob.post("listing:L1", "Un message"))["seq"]
    first = await remove(hub, "listing:L1", seq)
    again = await remove(hub, "listing:L1", seq)
    assert first[1]["duplicate"] is False and again == (200, {**first[1], "duplicate": True})
    entries = await hub.app.store.entries_after("listing:L1", 0, 10)
    assert [e.kind for e in entries] == ["comment", "remove"]
    assert len(await moderation_notices(bob)) == 1


async def test_a_removal_in_an_order_room_reaches_both_parties(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    sam, bea = await member(hub, "sam"), await member(hub, "bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    await bea.subscribe("order:O1")
    seq = (await sam.post("order:O1", "Envoyez l'argent par Western Union"))["seq"]
    assert (await bea.next_event(room="order:O1"))["event"] == "message"
    status, _ = await remove(hub, "order:O1", seq, reason="scam")
    assert status == 200
    assert (await bea.next_event(room="order:O1"))["event"] == "message_removed"
    [notice] = await moderation_notices(sam)
    assert notice["reason"] == "scam" and notice["room"] == "order:O1"


@pytest.mark.parametrize(
    ("target", "body", "status", "code"),
    [
        ("listing:L1/messages/99", {}, 404, "not_found"),
        ("order:O1/messages/1", {}, 404, "not_found"),  # the system message
        ("listing:L1/messages/DELETED", {}, 409, "conflict"),
        ("user:bob/messages/1", {}, 400, "bad_request"),
        ("listing:L1/messages/0", {}, 400, "bad_request"),
        ("listing:L1/messages/1", {"reason": "because"}, 400, "bad_request"),
        ("listing:L1/messages/1", {"statement": ""}, 400, "bad_request"),
        ("listing:L1/messages/1", {"statement": {"xx_YY!": "t"}}, 400, "bad_request"),
        ("listing:L1/messages/1", {"statement": {"en": "x" * 2001}}, 400, "bad_request"),
        ("listing:L1/messages/1", {"statement": None}, 400, "bad_request"),
    ],
)
async def test_a_removal_that_cannot_be_done_is_refused_with_a_code(
    hub: RunningHub, target: str, body: dict[str, Any], status: int, code: str
) -> None:
    await hub.listing("L1", seller="sam")
    bob, bea = await member(hub, "bob"), await member(hub, "bea")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    kept = (await bob.post("listing:L1", "Reste là"))["seq"]
    gone = (await bob.post("listing:L1", "Effacé par son auteur"))["seq"]
    await bob.delete("listing:L1", gone)
    path = target.replace("DELETED", str(gone))
    sent = {"reason": "spam", "statement": "Removed.", **body}
    got, reply = await hub.api("POST", f"/v1/rooms/{path}/remove", sent)
    assert (got, reply["error"]["code"]) == (status, code), reply
    [message, _] = (await bea.history("listing:L1"))["messages"][::-1]
    assert message["seq"] == kept and message["text"] == "Reste là"


async def report_of(hub: RunningHub, bob: ParleyClient, *reporters: ParleyClient) -> str:
    seq = (await bob.post("listing:L1", "Virement Interac seulement, hors site"))["seq"]
    filed = {}
    for reporter, reason in zip(reporters, ("scam", "off_platform", "scam"), strict=False):
        filed = await reporter.report("listing:L1", seq, reason)
    return str(filed["report"])


async def test_a_report_resolved_by_removal_removes_the_message_and_tells_the_author(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann, cat, dan = [await member(hub, u) for u in ("bob", "ann", "cat", "dan")]
    report_id = await report_of(hub, bob, ann, cat, dan)
    body = {"action": "remove_message", "statement": STATEMENT}
    status, reply = await hub.api("POST", f"/v1/reports/{report_id}/resolve", body)
    assert status == 200 and reply["changed"] is True, reply
    resolved = reply["report"]
    assert resolved["state"] == "resolved"
    assert resolved["resolution"]["action"] == "remove_message"
    assert resolved["resolution"]["reason"] == "scam"  # what most reporters said
    assert resolved["message"]["text"] == "Virement Interac seulement, hors site"  # evidence
    [notice] = await moderation_notices(bob)
    assert notice["reason"] == "scam" and notice["statement"] == STATEMENT["en"]
    [message] = (await ann.history("listing:L1"))["messages"]
    assert message["removed"] is True and message["text"] == ""
    status, queue = await hub.api("GET", "/v1/reports?state=open")
    assert queue["reports"] == []
    status, done = await hub.api("GET", "/v1/reports?state=resolved")
    assert [r["id"] for r in done["reports"]] == [report_id]


async def test_a_dismissed_report_leaves_the_message_and_is_resolved_once(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann = await member(hub, "bob"), await member(hub, "ann")
    report_id = await report_of(hub, bob, ann)
    path = f"/v1/reports/{report_id}/resolve"
    status, reply = await hub.api("POST", path, {"action": "dismiss"})
    assert status == 200 and reply["report"]["resolution"]["action"] == "dismiss"
    again = await hub.api("POST", path, {"action": "dismiss"})
    assert again[0] == 200 and again[1]["changed"] is False
    other = await hub.api("POST", path, {"action": "remove_message", "statement": "No."})
    assert other[0] == 409 and other[1]["error"]["code"] == "conflict"
    [message] = (await ann.history("listing:L1"))["messages"]
    assert message["text"] == "Virement Interac seulement, hors site"
    assert await moderation_notices(bob) == []
    refused = [
        await hub.api("POST", "/v1/reports/nope/resolve", {"action": "dismiss"}),
        await hub.api("POST", path, {"action": "ban"}),
    ]
    assert [(s, r["error"]["code"]) for s, r in refused] == [
        (404, "not_found"),
        (400, "bad_request"),
    ]


async def test_a_removal_needs_a_statement_of_reasons(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bob, ann = await member(hub, "bob"), await member(hub, "ann")
    report_id = await report_of(hub, bob, ann)
    status, reply = await hub.api(
        "POST", f"/v1/reports/{report_id}/resolve", {"action": "remove_message"}
    )
    assert (status, reply["error"]["code"]) == (400, "bad_request")
    [message] = (await ann.history("listing:L1"))["messages"]
    assert "removed" not in message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/reports"),
        ("GET", "/v1/reports/r1"),
        ("POST", "/v1/reports/r1/resolve"),
        ("POST", "/v1/rooms/listing:L1/messages/1/remove"),
    ],
)
async def test_only_the_backend_moderates(hub: RunningHub, method: str, path: str) -> None:
    """The moderators' routes are the internal API's: a member's token opens none."""
    token = hub.token("ann")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            async with http.request(method, hub.api_url + path, headers=headers, json={}) as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == "unauthorized"
