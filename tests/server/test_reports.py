"""Reports over real sockets, on both stores: what a member may report and how
often, the review queue the moderators read, and the backend's event feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from tests.server.conftest import RunningHub, notification_kinds, start_hub, stop_hub
from tests.server.test_offers import events_feed, members


@pytest.fixture
async def hub(store_url: str) -> AsyncIterator[RunningHub]:
    running = await start_hub(store_url, report_burst=4, report_context=2)
    try:
        yield running
    finally:
        await stop_hub(running)


async def queue(hub: RunningHub, query: str = "state=open") -> dict[str, Any]:
    status, reply = await hub.api("GET", f"/v1/reports?{query}")
    assert status == 200, reply
    return reply  # type: ignore[no-any-return]


async def comments(client: ParleyClient, room: str, *texts: str) -> list[int]:
    return [(await client.post(room, text))["seq"] for text in texts]


async def test_a_member_reports_a_message_once_and_a_repeat_answers_the_first(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob = await members(hub, "ann", "bob")
    [seq] = await comments(bob, "listing:L1", "Paiement par virement hors site svp")
    first = await ann.report("listing:L1", seq, "off_platform", "il demande un virement")
    assert first["duplicate"] is False and first["reason"] == "off_platform"
    again = await ann.report("listing:L1", seq, "spam")
    assert again == {"report": first["report"], "reason": "off_platform", "duplicate": True}
    [item] = (await queue(hub))["reports"]
    assert item["reporters"] == 1 and item["reasons"] == {"off_platform": 1}


async def test_the_queue_shows_one_item_per_message_with_its_snapshot_context_and_reasons(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob, cat, dan = await members(hub, "ann", "bob", "cat", "dan")
    first, second, third = await comments(
        dan, "listing:L1", "Bonjour", "Il est encore là ?", "Texte d'origine"
    )
    await ann.report("listing:L1", third, "scam", "faux lien de paiement")
    await bob.report("listing:L1", third, "scam")
    await cat.report("listing:L1", third, "harassment", "insultes")
    await dan.edit("listing:L1", third, "Texte modifié après coup")
    await dan.delete("listing:L1", first)
    reply = await queue(hub)
    [item] = reply["reports"]
    assert item["state"] == "open" and item["room"] == "listing:L1" and item["seq"] == third
    # The message as it was when first reported, not as it is now.
    message = item["message"]
    assert message["text"] == "Texte d'origine"
    assert message["author"] == {"id": "dan", "name": "dan"}
    assert (message["room"], message["seq"]) == ("listing:L1", third)
    assert item["reporters"] == 3 and item["reasons"] == {"scam": 2, "harassment": 1}
    assert [n["note"] for n in item["notes"]] == ["faux lien de paiement", "insultes"]
    assert all("reporter" not in n for n in item["notes"])
    # The context: the messages before it, as they are now (report_context: 2).
    assert [(m["seq"], m["text"]) for m in item["context"]] == [
        (first, ""),
        (second, "Il est encore là ?"),
    ]
    assert item["context"][0]["deleted"] is True
    status, single = await hub.api("GET", f"/v1/reports/{item['id']}")
    assert status == 200 and single["report"] == item


async def test_the_queue_is_paged_in_the_order_reports_arrived(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob = await members(hub, "ann", "bob")
    seqs = await comments(bob, "listing:L1", "un", "deux", "trois")
    for seq in seqs:
        await ann.report("listing:L1", seq, "spam")
    page = await queue(hub, "state=open&limit=2")
    assert [r["seq"] for r in page["reports"]] == seqs[:2] and page["more"] is True
    rest = await queue(hub, f"state=open&limit=2&after={page['next']}")
    assert [r["seq"] for r in rest["reports"]] == seqs[2:] and rest["more"] is False
    assert (await queue(hub, "state=resolved"))["reports"] == []
    for bad in ("state=closed", "limit=0", "limit=101", "after=x"):
        status, error = await hub.api("GET", f"/v1/reports?{bad}")
        assert status == 400 and error["error"]["code"] == "bad_request", bad
    status, missing = await hub.api("GET", "/v1/reports/nope")
    assert status == 404 and missing["error"]["code"] == "not_found"


async def test_report_created_joins_the_backend_event_feed_once_per_message(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob, cat = await members(hub, "ann", "bob", "cat")
    [seq] = await comments(bob, "listing:L1", "Écrivez-moi ailleurs")
    filed = await ann.report("listing:L1", seq, "off_platform", "hors plateforme")
    await cat.report("listing:L1", seq, "spam")
    [event] = [e for e in await events_feed(hub) if e["type"] == "report.created"]
    assert event["report_id"] == filed["report"]
    assert (event["room"], event["seq"], event["author_id"]) == ("listing:L1", seq, "bob")
    assert event["reason"] == "off_platform"
    # Ids only: neither the words nor who reported.
    assert "ann" not in str(event) and "ailleurs" not in str(event)


@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("own", "forbidden"),
        ("system", "not_found"),
        ("deleted", "not_found"),
        ("nothing", "not_found"),
        ("other_order", "forbidden"),
        ("no_order", "order_required"),
        ("no_listing", "not_found"),
    ],
)
async def test_a_member_reports_only_other_members_messages_they_may_read(
    hub: RunningHub, what: str, code: str
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bea, sam = await members(hub, "ann", "bea", "sam")
    await hub.order("O1", "L1", buyer="bea", seller="sam")  # ann is no party
    [mine] = await comments(ann, "listing:L1", "Mon propre message")
    [gone] = await comments(bea, "listing:L1", "Message effacé")
    await bea.delete("listing:L1", gone)
    [private] = await comments(sam, "order:O1", "Expédié")
    room, seq = {
        "own": ("listing:L1", mine),
        "system": ("order:O1", 1),
        "deleted": ("listing:L1", gone),
        "nothing": ("listing:L1", 999),
        "other_order": ("order:O1", private),
        "no_order": ("order:O2", 1),
        "no_listing": ("listing:L9", 1),
    }[what]
    reporter = bea if what == "system" else ann
    with pytest.raises(ParleyError) as refused:
        await reporter.report(room, seq, "spam")
    assert refused.value.code == code
    assert (await queue(hub))["reports"] == []


async def test_a_party_reports_a_message_of_their_order_room(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    bea, sam = await members(hub, "bea", "sam")
    await hub.order("O1", "L1", buyer="bea", seller="sam")
    [seq] = await comments(sam, "order:O1", "Payez-moi plutôt en cartes-cadeaux")
    await bea.report("order:O1", seq, "scam")
    [item] = (await queue(hub))["reports"]
    assert item["room"] == "order:O1" and item["message"]["author"]["id"] == "sam"


async def test_reports_count_against_a_per_member_allowance(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob, cat = await members(hub, "ann", "bob", "cat")
    seqs = await comments(bob, "listing:L1", *(f"message {i}" for i in range(5)))
    for seq in seqs[:4]:  # report_burst: 4
        await ann.report("listing:L1", seq, "spam")
    with pytest.raises(ParleyError) as limited:
        await ann.report("listing:L1", seqs[4], "spam")
    assert limited.value.code == "rate_limited"
    await cat.report("listing:L1", seqs[4], "spam")  # another member's allowance is theirs


async def test_the_reported_member_never_learns_who_reported_them(hub: RunningHub) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob = await members(hub, "ann", "bob")
    await bob.subscribe("listing:L1")
    [seq] = await comments(bob, "listing:L1", "Un message signalé")
    await ann.report("listing:L1", seq, "harassment", "de la part d'ann")
    assert await notification_kinds(bob) == []
    [message] = (await bob.history("listing:L1"))["messages"]
    assert "ann" not in str(message)
    event = await bob.next_event(room="listing:L1")  # his own message, nothing after it
    assert event["seq"] == seq
    with pytest.raises(TimeoutError):
        await bob.next_event(room="listing:L1", timeout=0.3)


@pytest.mark.parametrize(
    "fields",
    [
        {"reason": "rude"},
        {"reason": "spam", "note": ""},
        {"reason": "spam", "note": "x" * 501},
        {"reason": "spam", "note": 5},
        {"reason": "spam", "reporter": "ann"},
    ],
    ids=repr,
)
async def test_a_malformed_report_is_refused_and_stores_nothing(
    hub: RunningHub, fields: dict[str, Any]
) -> None:
    await hub.listing("L1", seller="sam")
    ann, bob = await members(hub, "ann", "bob")
    [seq] = await comments(bob, "listing:L1", "Bonjour")
    with pytest.raises(ParleyError) as refused:
        await ann.request("report", room="listing:L1", seq=seq, **fields)
    assert refused.value.code == "bad_request"
    assert (await queue(hub))["reports"] == []
