"""R8 over real sockets, on both stores: contact details are masked before they are
stored (or refused), the author is told why in their language, and addresses,
tracking numbers and members' @names are left alone."""

from __future__ import annotations

import re

import pytest

from parley.client import ParleyError
from parley.server.core.contact_guard import MASK_CHAR
from tests.server.conftest import RunningHub, start_hub, stop_hub

PHONE_TEXT = "Dispo samedi, appelle-moi au 514 555-0123 pour l'essayer."
DIGITS = re.compile(r"\d{3}\D?\d{4}")


async def test_r8_a_phone_number_in_a_comment_is_masked_before_it_is_stored(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    author = await hub.client("u1", "alice", locale="fr-CA")
    watcher = await hub.client("u2", "bob")
    await watcher.subscribe("listing:L1")
    reply = await author.post("listing:L1", PHONE_TEXT)
    [masked] = reply["masked"]
    assert masked["kind"] == "phone"
    start, end = masked["start"], masked["end"]
    assert PHONE_TEXT[start:end].strip() and "514" in PHONE_TEXT[start:end]
    assert "protection des acheteurs" in reply["notice"]  # the author's language
    event = await watcher.next_event(room="listing:L1")
    assert event["masked_kinds"] == ["phone"]
    assert DIGITS.search(event["text"]) is None and MASK_CHAR in event["text"]
    assert len(event["text"]) == len(PHONE_TEXT)
    assert event["text"].startswith("Dispo samedi, appelle-moi au ")
    # The original is kept nowhere: not in history, not in the log.
    [stored] = (await watcher.history("listing:L1"))["messages"]
    assert stored["text"] == event["text"] and stored["masked_kinds"] == ["phone"]
    [entry] = await hub.app.store.entries_after("listing:L1", 0, 10)
    assert DIGITS.search(entry.text) is None


async def test_r8_the_notice_speaks_the_authors_language(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    author = await hub.client("u1", "alice", locale="en")
    reply = await author.post("listing:L1", "Email me at jean.tremblay@gmail.com")
    assert [m["kind"] for m in reply["masked"]] == ["email"]
    assert "e-mail address" in reply["notice"]
    assert "not covered by buyer protection" in reply["notice"]


async def test_r8_order_rooms_mask_contacts_but_keep_addresses_and_tracking(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    seller = await hub.client("s1", "sam")
    buyer = await hub.client("b1", "bea")
    await buyer.subscribe("order:O1")
    keep = (
        "Expédié avec Postes Canada, numéro de suivi 7023 2100 0123 4567. "
        "Livraison au 1234 rue Saint-Denis, app. 5, Montréal QC H2X 1Y4."
    )
    reply = await seller.post("order:O1", keep)
    assert "masked" not in reply
    assert (await buyer.next_event(room="order:O1"))["text"] == keep
    reply = await seller.post("order:O1", "Sinon écris-moi sur WhatsApp au +1 438 555 0199")
    assert [m["kind"] for m in reply["masked"]] == ["phone"]
    event = await buyer.next_event(room="order:O1")
    assert "438" not in event["text"] and "WhatsApp" in event["text"]


async def test_r8_an_edit_goes_through_the_same_guard(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    author = await hub.client("u1", "alice")
    watcher = await hub.client("u2", "bob")
    await watcher.subscribe("listing:L1")
    posted = await author.post("listing:L1", "Still available?")
    await watcher.next_event(room="listing:L1")
    edited = await author.edit("listing:L1", posted["seq"], "Text me: 514-555-0123")
    assert [m["kind"] for m in edited["masked"]] == ["phone"]
    event = await watcher.next_event(room="listing:L1")
    assert event["event"] == "message_edited" and event["masked_kinds"] == ["phone"]
    assert "555" not in event["text"]
    [message] = (await watcher.history("listing:L1"))["messages"]
    assert "555" not in message["text"] and message["masked_kinds"] == ["phone"]
    clean = await author.edit("listing:L1", posted["seq"], "Still available? Size 10.")
    assert "masked" not in clean
    event = await watcher.next_event(room="listing:L1")
    assert event["masked_kinds"] == []


async def test_r8_a_members_name_is_a_mention_never_a_handle(hub: RunningHub) -> None:
    await hub.listing("L1", seller="s1")
    for user_id, name in (("u1", "alice"), ("s1", "sam")):
        status, _ = await hub.api("PUT", f"/v1/users/{user_id}", {"name": name})
        assert status == 200
    sam = await hub.client("s1")
    reply = await sam.post("listing:L1", "@alice regarde ça, et mon insta c'est @sam.vintage_mtl")
    assert [m["name"] for m in reply["mentions"]] == ["alice"]
    assert [m["kind"] for m in reply["masked"]] == ["social"]
    [stored] = (await sam.history("listing:L1"))["messages"]
    assert stored["text"].startswith("@alice regarde ça")
    assert "sam.vintage_mtl" not in stored["text"]


async def test_r8_reject_refuses_and_stores_nothing(store_url: str) -> None:
    hub = await start_hub(store_url, contact_policy_listing="reject")
    try:
        await hub.listing("L1", seller="s1")
        author = await hub.client("u1", "alice")
        with pytest.raises(ParleyError) as err:
            await author.post("listing:L1", "Mon cell: 514 555 0123, ou jean@videotron.ca")
        assert err.value.code == "contact_details"
        assert err.value.details == {"kinds": ["phone", "email"]}
        assert (await author.history("listing:L1"))["messages"] == []
        ok = await author.post("listing:L1", "Je peux passer samedi vers 14 h, 40 $ ça va ?")
        assert ok["seq"] == 1 and "masked" not in ok
    finally:
        await stop_hub(hub)


async def test_r8_off_stores_the_text_as_typed(sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url, contact_policy_listing="off")
    try:
        await hub.listing("L1", seller="s1")
        author = await hub.client("u1", "alice")
        reply = await author.post("listing:L1", PHONE_TEXT)
        assert "masked" not in reply
        [stored] = (await author.history("listing:L1"))["messages"]
        assert stored["text"] == PHONE_TEXT
    finally:
        await stop_hub(hub)


async def test_r8_a_disguised_number_is_masked_as_written_and_the_mention_holds(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s1")
    await hub.api("PUT", "/v1/users/u2", {"name": "bob"})
    bob = await hub.client("u2", "bob")
    author = await hub.client("u1", "alice")
    keycaps = "".join(f"{d}\ufe0f\u20e3" for d in "5145550187")
    text = f"@bob mon cell {keycaps} ou \uff15\uff11\uff14 555\u200b0188"
    reply = await author.post("listing:L1", text)
    assert [m["kind"] for m in reply["masked"]] == ["phone", "phone"]
    assert [m["user_id"] for m in reply["mentions"]] == ["u2"]
    first = reply["masked"][0]
    assert text[first["start"] : first["end"]] == keycaps  # indices of the text as sent
    [stored] = (await bob.history("listing:L1"))["messages"]
    assert len(stored["text"]) == len(text) and stored["text"].startswith("@bob mon cell ")
    assert stored["mentions"][0]["start"] == 0 and stored["mentions"][0]["end"] == 4
    assert set(stored["text"][len("@bob mon cell ") :].replace(" ou ", "")) == {MASK_CHAR}
