"""R4 over real sockets, on both stores: @mentions notify, once, within bounds."""

from __future__ import annotations

from typing import Any

import pytest

from parley.client import ParleyClient, ParleyError
from tests.server.conftest import RunningHub


async def member(hub: RunningHub, user_id: str, name: str, locale: str = "en") -> None:
    status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name, "locale": locale})
    assert status == 200, reply


async def mentions_of(client: ParleyClient) -> list[dict[str, Any]]:
    """Every mention notification the member has, oldest first."""
    reply = await client.notifications(limit=100)
    found = [n["notification"] for n in reversed(reply["notifications"])]
    return [n for n in found if n["kind"] == "mention"]


@pytest.fixture
async def people(hub: RunningHub) -> dict[str, ParleyClient]:
    await hub.listing("L1", seller="s1")
    for user_id, name in (
        ("s1", "sam"),
        ("u1", "alice"),
        ("u2", "Zoé"),
        ("u3", "jean-luc"),
        ("u4", "marie.tremblay"),
    ):
        await member(hub, user_id, name)
    return {user_id: await hub.client(user_id) for user_id in ("s1", "u1", "u2", "u3", "u4")}


async def test_r4_a_mention_notifies_the_member_live_with_where_and_who(
    hub: RunningHub, people: dict[str, ParleyClient]
) -> None:
    sam, alice = people["s1"], people["u1"]
    reply = await sam.post("listing:L1", "@alice, regarde cette nouvelle annonce !")
    assert reply["notified"] == 1
    assert reply["mentions"] == [{"user_id": "u1", "name": "alice", "start": 0, "end": 6}]
    event = await alice.next_event(room=alice.inbox)
    assert event["event"] == "notification"
    notice = event["notification"]
    assert notice["kind"] == "mention"
    assert notice["room"] == "listing:L1" and notice["seq"] == reply["seq"]
    assert notice["author"] == {"id": "s1", "name": "sam"}
    assert notice["excerpt"] == "@alice, regarde cette nouvelle annonce !"
    # The stored message carries its mentions, for widgets to render as links.
    [message] = (await alice.history("listing:L1"))["messages"]
    assert message["mentions"] == reply["mentions"]


@pytest.mark.parametrize(
    ("text", "notified"),
    [
        ("Salut @ZOÉ et @Jean-Luc !", {"u2", "u3"}),  # case and accents
        ("(@marie.tremblay) tu l'as vu ?", {"u4"}),  # punctuation around
        ("@zoe\u0301 regarde", {"u2"}),  # an accent typed as a combining mark
        ("Write to alice@example.com or sam@alice.ca", set()),  # e-mail addresses
        ("See https://medium.com/@alice and www.x.com/@Zoé", set()),  # URLs
        ("@nobody @ghost_99 are not members", set()),  # unknown names stay text
        ("Merci @sam !", set()),  # the author
        ("@alice @Alice @ALICE, tu es là ?", {"u1"}),  # once per message
        ("No mention at all, 25 $ ferme.", set()),
    ],
)
async def test_r4_who_is_notified(
    hub: RunningHub, people: dict[str, ParleyClient], text: str, notified: set[str]
) -> None:
    reply = await people["s1"].post("listing:L1", text)
    assert reply.get("notified", 0) == len(notified)
    for user_id in ("u1", "u2", "u3", "u4", "s1"):
        found = await mentions_of(people[user_id])
        assert len(found) == (1 if user_id in notified else 0), (user_id, found)
    assert {m["user_id"] for m in reply.get("mentions", [])} == notified


async def test_r4_at_most_ten_members_per_message(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    for i in range(11):
        await member(hub, f"m{i}", f"membre{i}")
    author = await hub.client("s1", "sam")
    text = " ".join(f"@membre{i}" for i in range(11))
    reply = await author.post("listing:L1", text)
    assert reply["notified"] == 10
    assert reply["not_notified"] == 1 and reply["reason"] == "too_many_mentions"
    assert len(reply["mentions"]) == 10
    last = await hub.client("m10")
    assert await mentions_of(last) == []
    first = await hub.client("m0")
    assert len(await mentions_of(first)) == 1


async def test_r4_an_edit_notifies_only_the_newly_mentioned(
    hub: RunningHub, people: dict[str, ParleyClient]
) -> None:
    sam = people["s1"]
    posted = await sam.post("listing:L1", "@alice tu veux le voir ?")
    edited = await sam.edit("listing:L1", posted["seq"], "@alice et @Zoé, vous voulez le voir ?")
    assert edited["notified"] == 1
    assert [m["user_id"] for m in edited["mentions"]] == ["u1", "u2"]
    # Dropping a name withdraws its notification (R2: the excerpt follows the message);
    # adding it back notifies nobody twice for one message.
    await sam.edit("listing:L1", posted["seq"], "Finalement, personne.")
    assert await mentions_of(people["u1"]) == []
    again = await sam.edit("listing:L1", posted["seq"], "@alice @Zoé toujours là ?")
    assert again["notified"] == 0
    assert await mentions_of(people["u1"]) == []
    assert await mentions_of(people["u2"]) == []
    [message] = (await people["u1"].history("listing:L1"))["messages"]
    assert [m["name"] for m in message["mentions"]] == ["alice", "Zoé"]


async def test_r4_a_retried_post_notifies_nobody_twice(
    hub: RunningHub, people: dict[str, ParleyClient]
) -> None:
    sam = people["s1"]
    first = await sam.post("listing:L1", "@alice ?", client_msg_id="c1")
    again = await sam.post("listing:L1", "@alice ?", client_msg_id="c1")
    assert again["duplicate"] is True and again["seq"] == first["seq"]
    assert len(await mentions_of(people["u1"])) == 1


async def test_r4_mentions_in_an_order_room_reach_its_parties_only(
    hub: RunningHub, people: dict[str, ParleyClient]
) -> None:
    await hub.order("O1", "L1", buyer="u1", seller="s1")
    reply = await people["s1"].post("order:O1", "@alice @Zoé c'est expédié")
    assert [m["user_id"] for m in reply["mentions"]] == ["u1"]
    assert await mentions_of(people["u2"]) == []


async def test_r4_mentions_over_the_allowance_are_stored_but_notify_nobody(
    sqlite_url: str,
) -> None:
    from tests.server.conftest import start_hub, stop_hub

    hub = await start_hub(sqlite_url, mention_burst=3, mention_rate=0.001)
    try:
        await hub.listing("L1", seller="s1")
        for i in range(4):
            await member(hub, f"m{i}", f"membre{i}")
        author = await hub.client("s1", "sam")
        ok = await author.post("listing:L1", "@membre0 @membre1")
        assert ok["notified"] == 2
        over = await author.post("listing:L1", "@membre2 @membre3")
        assert over["notified"] == 0
        assert over["not_notified"] == 2 and over["reason"] == "mentions_rate_limited"
        # Stored all the same, mentions and all.
        assert [m["name"] for m in over["mentions"]] == ["membre2", "membre3"]
        history = await author.history("listing:L1")
        assert history["messages"][0]["seq"] == over["seq"]
    finally:
        await stop_hub(hub)


async def test_r4_a_token_cannot_take_or_change_a_username(
    hub: RunningHub, people: dict[str, ParleyClient]
) -> None:
    # u9 is unknown to the backend and its token claims alice's name.
    with pytest.raises(ParleyError) as err:
        await hub.client("u9", "ALICE")
    assert err.value.code == "conflict"
    # A registered member's token cannot rename them either.
    sam = await hub.client("s1", "someone_else")
    assert sam.user["name"] == "sam"
    reply = await sam.post("listing:L1", "@alice hello")
    assert reply["mentions"][0]["user_id"] == "u1"
    status, body = await hub.api("PUT", "/v1/users/u9", {"name": "Alice"})
    assert status == 409 and body["error"]["code"] == "conflict"
    status, body = await hub.api("PUT", "/v1/users/u9", {"name": "not a username"})
    assert status == 400 and body["error"]["code"] == "bad_request"
