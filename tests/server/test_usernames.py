"""Usernames through a live hub, on SQLite, one Redis and a Redis Cluster (the username
index is one key, on one slot): no contact details in a name (R8), and no look-alike of
another member's name (R4: a mention names one member; nobody acts as another)."""

from __future__ import annotations

import pytest

from parley.client import ParleyClient, ParleyError
from parley.server.core.mentions import is_valid_username
from tests.server.conftest import RunningHub

JOSEE = "Jos\u00e9e"


async def register(hub: RunningHub, user_id: str, name: str) -> tuple[int, dict[str, object]]:
    status, reply = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name})
    return status, reply


async def refused_token(hub: RunningHub, user_id: str, name: str) -> ParleyError:
    with pytest.raises(ParleyError) as info:
        await ParleyClient.connect(hub.ws_url, hub.token(user_id, name), reconnect=False)
    return info.value


@pytest.mark.parametrize(
    "name",
    ["5145552661", "julie.tremblay.gmail.com", "514_555_0187", "snap.lea99", "joe_hotmail"],
)
async def test_r8_the_api_refuses_a_username_holding_contact_details(
    every_store_hub: RunningHub, name: str
) -> None:
    status, reply = await register(every_store_hub, "u1", name)
    assert status == 400
    assert reply["error"]["code"] == "username_contact_details"  # type: ignore[index]
    assert await every_store_hub.app.store.get_user("u1") is None  # type: ignore[arg-type]


async def test_r8_a_name_refused_leaves_nobody_to_mention_and_the_number_masked(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    await hub.listing("L1", seller="s1")
    status, _ = await register(hub, "u1", "5145552661")
    assert status == 400
    sam = await hub.client("s1", "sam")
    reply = await sam.post("listing:L1", "call @5145552661 tonight")
    assert reply.get("mentions", []) == [] and reply["masked"][0]["kind"] == "phone"
    [message] = (await sam.history("listing:L1"))["messages"]
    assert "5145552661" not in message["text"]


@pytest.mark.parametrize("name", ["call 514 555 0199", "joe@gmail.com", "lea_insta"])
async def test_r8_a_token_cannot_seed_a_name_holding_contact_details(
    every_store_hub: RunningHub, name: str
) -> None:
    error = await refused_token(every_store_hub, "u1", name)
    assert error.code == "username_contact_details"
    assert await every_store_hub.app.store.get_user("u1") is None  # type: ignore[arg-type]


async def test_r8_a_registered_members_token_name_is_not_read(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    assert (await register(hub, "u1", JOSEE))[0] == 200
    client = await hub.client("u1", "joe@gmail.com")  # the backend's name stands
    assert client.user["name"] == JOSEE


async def test_a_reconnecting_member_gets_the_name_the_backend_gave_since(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    assert (await hub.client("u1", "lea")).user["name"] == "lea"  # seeded by the token
    assert (await register(hub, "u1", JOSEE))[0] == 200
    assert (await hub.client("u1", "lea")).user["name"] == JOSEE
    # A name the rules refuse as a seed is only ignored for a member the store has.
    assert (await hub.client("u1", "joe@gmail.com")).user["name"] == JOSEE


@pytest.mark.parametrize(
    "look_alike",
    [
        f"{JOSEE}\u200b",  # a zero-width space
        "J\u043es\u00e9e",  # a Cyrillic o
        f"{JOSEE} ",  # a trailing space
        f"\u2060{JOSEE}",  # a word joiner
        "JOSE\u0301E",
    ],
)
async def test_r4_a_look_alike_of_a_members_name_is_refused(
    every_store_hub: RunningHub, look_alike: str
) -> None:
    hub = every_store_hub
    assert (await register(hub, "u1", JOSEE))[0] == 200
    error = await refused_token(hub, "u2", look_alike)
    assert error.code == "conflict"
    _, reply = await register(hub, "u3", look_alike)
    expected = "conflict" if is_valid_username(look_alike) else "bad_request"
    assert reply["error"]["code"] == expected  # type: ignore[index]
    # The real member is still the one a mention of the look-alike names.
    await hub.listing("L1", seller="s1")
    sam = await hub.client("s1", "sam")
    reply = await sam.post("listing:L1", f"@{JOSEE} ?")
    assert [m["user_id"] for m in reply["mentions"]] == ["u1"]


async def test_r4_a_look_alike_seeded_first_keeps_the_name_from_the_backend(
    every_store_hub: RunningHub,
) -> None:
    hub = every_store_hub
    await hub.client("u2", "J\u043es\u00e9e")  # first come, by token
    status, reply = await register(hub, "u1", JOSEE)
    assert (status, reply["error"]["code"]) == (409, "conflict")  # type: ignore[index]
