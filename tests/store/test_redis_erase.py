"""A deleted comment's words leave Redis: not only read back blank, but gone from the
stored bytes (its text, its edits' texts, mentions and masks, its last edit)."""

from __future__ import annotations

import pytest

from parley.server.core.model import Author, Draft, Mention, UserId
from parley.server.store.redis import RedisStore
from tests.support.redis_server import RedisServer

ROOM = "listing:l1"
ALICE = Author(UserId("alice"), "Alice")
SECRET_WORDS = ("appelle-moi", "514 555 0199", "bob_the_buyer", "rue Saint-Denis")


@pytest.fixture
def store(redis_store: RedisStore) -> RedisStore:
    return redis_store


def stored_bytes(redis_server: RedisServer) -> bytes:
    with redis_server.client() as admin:
        out = b""
        for key in admin.scan_iter(match=f"parley:{{{ROOM}}}:*"):
            if admin.type(key) == b"hash":
                out += b"".join(k + v for k, v in admin.hgetall(key).items())
        return out


async def test_a_delete_erases_the_comments_words_and_its_edits_from_the_stored_bytes(
    store: RedisStore, redis_server: RedisServer
) -> None:
    bob = (Mention(UserId("bob"), "bob_the_buyer", 0, 14),)
    await store.append(ROOM, Draft("comment", "appelle-moi, réponse rapide", 1, ALICE))
    await store.append(ROOM, Draft("comment", "Encore disponible ?", 2, ALICE))
    await store.append(
        ROOM, Draft("edit", "@bob_the_buyer 514 555 0199", 3, ALICE, target=1, mentions=bob)
    )
    await store.append(ROOM, Draft("edit", "au 1200 rue Saint-Denis", 4, ALICE, target=1))
    await store.append(ROOM, Draft("edit", "Encore disponible ? Oui", 5, ALICE, target=2))
    before = stored_bytes(redis_server)
    assert all(word.encode() in before for word in SECRET_WORDS)

    await store.append(ROOM, Draft("delete", "", 6, ALICE, target=1))

    after = stored_bytes(redis_server)
    for word in SECRET_WORDS:
        assert word.encode() not in after, word
    assert b"Encore disponible ? Oui" in after  # another comment's edit stays
    log = {e.seq: e for e in await store.entries_after(ROOM, 0, 10)}
    assert [log[s].text for s in (1, 3, 4)] == ["", "", ""]
    assert (log[1].deleted, log[1].ts, log[1].author) == (True, 1, ALICE)
    assert (log[3].kind, log[3].target, log[3].mentions) == ("edit", 1, ())
    assert log[2].text == "Encore disponible ? Oui"


async def test_r2_a_withdrawn_notification_leaves_no_excerpt_in_the_stored_bytes(
    store: RedisStore, redis_server: RedisServer
) -> None:
    inbox = "user:bob"
    data = {"kind": "mention", "room": ROOM, "seq": 1, "excerpt": "appelle-moi au 514 555 0199"}
    first = await store.append(inbox, Draft("notification", "", 1, client_msg_id="k", data=data))
    later = {**data, "excerpt": "@bob_the_buyer rue Saint-Denis"}
    await store.append(inbox, Draft("edit", "", 2, target=first.entry.seq, data=later))
    other = {**data, "seq": 2, "excerpt": "Encore disponible ? Oui"}
    await store.append(inbox, Draft("notification", "", 3, client_msg_id="k2", data=other))

    await store.append(inbox, Draft("delete", "", 4, target=first.entry.seq))

    with redis_server.client() as admin:
        after = b"".join(
            k + v
            for key in admin.scan_iter(match=f"parley:{{{inbox}}}:*")
            if admin.type(key) == b"hash"
            for k, v in admin.hgetall(key).items()
        )
    for word in SECRET_WORDS:
        assert word.encode() not in after, word
    assert b"Encore disponible ? Oui" in after  # another notification stays


async def test_a_removal_erases_the_words_as_a_delete_does(
    store: RedisStore, redis_server: RedisServer
) -> None:
    await store.append(ROOM, Draft("comment", "appelle-moi au 514 555 0199", 1, ALICE))
    await store.append(ROOM, Draft("edit", "au 1200 rue Saint-Denis", 2, ALICE, target=1))
    await store.append(ROOM, Draft("remove", "", 3, target=1, data={"reason": "spam"}))
    after = stored_bytes(redis_server)
    for word in ("appelle-moi", "514 555 0199", "rue Saint-Denis"):
        assert word.encode() not in after, word
    target = await store.get_entry(ROOM, 1)
    assert target is not None and (target.text, target.deleted, target.removed) == ("", True, True)
