"""Who a message's mentions notify (R4): pure, no sockets."""

from __future__ import annotations

from parley.server.core.mention_rules import (
    MAX_LOOKUPS,
    lookup_keys,
    newly_mentioned,
    resolve_mentions,
)
from parley.server.core.mentions import MAX_NOTIFIED, find_mentions, username_key
from parley.server.core.model import Mention, User, UserId


def members(*names: str) -> dict[str, User]:
    return {username_key(n): User(UserId(f"id-{n.lower()}"), n) for n in names}


def test_r4_unknown_names_and_the_author_stay_text() -> None:
    text = "@sam @alice @nobody regarde"
    found = members("sam", "alice")
    resolved = resolve_mentions(find_mentions(text), found, author_id="id-sam")
    assert resolved.members == ("id-alice",)
    assert resolved.mentions == (Mention(UserId("id-alice"), "alice", 5, 11),)
    assert resolved.over_limit == 0


def test_r4_a_member_named_twice_is_notified_once_and_linked_twice() -> None:
    text = "@Alice puis @alice"
    resolved = resolve_mentions(find_mentions(text), members("alice"), author_id="x")
    assert resolved.members == ("id-alice",)
    # Both spans link to the member, under the name as the member spells it.
    assert [(m.start, m.end, m.name) for m in resolved.mentions] == [
        (0, 6, "alice"),
        (12, 18, "alice"),
    ]


def test_r4_at_most_ten_members_the_rest_stay_text() -> None:
    names = [f"m{i}" for i in range(MAX_NOTIFIED + 3)]
    text = " ".join(f"@{n}" for n in names)
    resolved = resolve_mentions(find_mentions(text), members(*names), author_id="x")
    assert len(resolved.members) == MAX_NOTIFIED
    assert resolved.over_limit == 3
    assert {m.name for m in resolved.mentions} == set(names[:MAX_NOTIFIED])


def test_r4_in_an_order_room_only_those_who_may_read_are_mentioned() -> None:
    text = "@buyer @stranger"
    found = members("buyer", "stranger")
    resolved = resolve_mentions(
        find_mentions(text), found, author_id="id-seller", may_read=lambda u: u == "id-buyer"
    )
    assert resolved.members == ("id-buyer",)
    assert resolved.over_limit == 0  # not over a limit: not allowed


def test_r4_an_edit_notifies_only_the_new_names() -> None:
    before = (Mention(UserId("id-alice"), "alice", 0, 6),)
    after = resolve_mentions(find_mentions("@alice @zoé"), members("alice", "zoé"), "x")
    assert newly_mentioned(before, after) == ["id-zoé"]


def test_a_hostile_message_costs_a_bounded_lookup() -> None:
    text = " ".join(f"@n{i}" for i in range(1000))
    assert len(lookup_keys(find_mentions(text))) == MAX_LOOKUPS
