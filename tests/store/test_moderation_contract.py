"""The moderation part of the Store contract, on every backend: blocks, mutes, reports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parley.protocol.errors import ParleyError
from parley.server.core.model import Author, Draft, UserId
from parley.server.core.reports import EVENTS_ROOM, Filed, Flag
from parley.server.core.restrictions import Restriction
from parley.server.store import Store

ANN, BOB, CAT, DAN = UserId("ann"), UserId("bob"), UserId("cat"), UserId("dan")


async def test_blocks_are_bounded_and_listed_most_recent_first(store: Store) -> None:
    assert await store.block(ANN, BOB, 1000, 2) is True
    assert await store.block(ANN, BOB, 2000, 2) is False  # the first time is kept
    assert await store.block(ANN, CAT, 1500, 2) is True
    with pytest.raises(ParleyError) as full:
        await store.block(ANN, DAN, 3000, 2)
    assert full.value.code == "limit_reached"
    assert await store.blocks(ANN, 10) == [(CAT, 1500), (BOB, 1000)]
    assert await store.unblock(ANN, BOB) is True
    assert await store.unblock(ANN, BOB) is False
    assert await store.blocks(ANN, 10) == [(CAT, 1500)]
    assert await store.blocks(BOB, 10) == []


async def test_racing_blocks_never_pass_the_bound(store: Store) -> None:
    others = [UserId(f"m{i}") for i in range(20)]
    results = await asyncio.gather(
        *(store.block(ANN, other, 1000 + i, 5) for i, other in enumerate(others)),
        return_exceptions=True,
    )
    assert sum(r is True for r in results) == 5
    assert all(isinstance(r, ParleyError) for r in results if r is not True)
    assert len(await store.blocks(ANN, 100)) == 5


async def test_blocked_between_finds_a_block_in_either_direction(store: Store) -> None:
    await store.block(ANN, BOB, 1000, 10)  # ann blocks bob
    await store.block(CAT, ANN, 1000, 10)  # cat blocks ann
    assert await store.blocked_between(ANN, [BOB, CAT, DAN]) == {BOB, CAT}
    assert await store.blocked_between(BOB, [ANN]) == {ANN}
    assert await store.blocked_between(DAN, [ANN, BOB]) == set()
    assert await store.blocked_between(ANN, []) == set()


async def test_silencing_says_whether_the_author_is_blocked_and_the_room_muted(
    store: Store,
) -> None:
    assert await store.silencing(ANN, BOB, "listing:L1") == (False, False)
    await store.block(ANN, BOB, 1000, 10)
    assert await store.mute(ANN, "listing:L1", 1000, 10) is True
    assert await store.mute(ANN, "listing:L1", 2000, 10) is False
    assert await store.silencing(ANN, BOB, "listing:L1") == (True, True)
    assert await store.silencing(ANN, CAT, "listing:L2") == (False, False)
    assert await store.silencing(ANN, None, None) == (False, False)
    assert await store.silencing(BOB, ANN, "listing:L1") == (False, False)  # one-way
    assert await store.mutes(ANN, 10) == [("listing:L1", 1000)]
    assert await store.unmute(ANN, "listing:L1") is True
    assert await store.silencing(ANN, BOB, "listing:L1") == (True, False)


def snapshot(seq: int, author: str = "bob", room: str = "listing:L1") -> dict[str, Any]:
    return {"room": room, "seq": seq, "text": "words", "ts": 5, "author": {"id": author}}


def created_event(report_id: str) -> Draft:
    return Draft(
        kind="event",
        text="",
        ts=1000,
        client_msg_id=f"report.created:{report_id}",
        data={"type": "report.created", "report_id": report_id},
    )


async def test_a_first_report_and_its_event_are_stored_together(store: Store) -> None:
    filed = await store.file_report(
        "r1", snapshot(3), Flag(ANN, "spam", "a note", 1000), created_event("r1")
    )
    assert filed == Filed("r1", duplicate=False, created=True, reporters=1, reason="spam")
    [event] = await store.entries_after(EVENTS_ROOM, 0, 10)
    assert event.kind == "event" and event.data == {"type": "report.created", "report_id": "r1"}
    report = await store.get_report("r1")
    assert report is not None
    assert (report.room, report.seq, report.author_id, report.state) == (
        "listing:L1", 3, "bob", "open",
    )  # fmt: skip
    assert report.snapshot == snapshot(3)
    assert report.reasons == {"spam": 1} and report.reporters == 1
    assert report.notes == [{"reason": "spam", "note": "a note", "ts": 1000}]


async def test_later_reports_count_in_the_first_item_once_per_reporter(store: Store) -> None:
    await store.file_report("r1", snapshot(3), Flag(ANN, "spam", None, 1000), created_event("r1"))
    # Another reporter: the same item, whatever id and event the caller proposes.
    filed = await store.file_report(
        "r2", snapshot(3), Flag(CAT, "scam", "why", 2000), created_event("r2")
    )
    assert filed == Filed("r1", duplicate=False, created=False, reporters=2, reason="scam")
    again = await store.file_report(
        "r3", snapshot(3), Flag(ANN, "other", None, 3000), created_event("r3")
    )
    assert again == Filed("r1", duplicate=True, created=False, reporters=2, reason="spam")
    assert len(await store.entries_after(EVENTS_ROOM, 0, 10)) == 1
    report = await store.get_report("r1")
    assert report is not None and report.reasons == {"spam": 1, "scam": 1}
    assert report.updated_ts == 2000 and report.notes == [
        {"reason": "scam", "note": "why", "ts": 2000}
    ]
    assert await store.get_report("r2") is None


async def test_the_queue_is_read_in_order_page_by_page(store: Store) -> None:
    for i in range(1, 6):
        await store.file_report(
            f"r{i}", snapshot(i), Flag(ANN, "spam", None, 1000 + i), created_event(f"r{i}")
        )
    first = await store.reports("open", 0, 3)
    assert [r.id for r in first] == ["r1", "r2", "r3"]
    rest = await store.reports("open", first[-1].number, 3)
    assert [r.id for r in rest] == ["r4", "r5"]
    assert await store.reports("resolved", 0, 10) == []
    assert await store.reports("open", 0, 0) == []


async def test_a_removal_blanks_the_message_and_its_edits_and_says_removed(store: Store) -> None:
    author = Author(BOB, "bob")
    await store.append("listing:L1", Draft("comment", "first words", 1, author))
    await store.append("listing:L1", Draft("edit", "second words", 2, author, target=1))
    await store.append("listing:L1", Draft("comment", "another", 3, author))
    await store.append("listing:L1", Draft("delete", "", 4, author, target=3))
    removal = await store.append(
        "listing:L1", Draft("remove", "", 5, client_msg_id="remove:1", target=1)
    )
    again = await store.append(
        "listing:L1", Draft("remove", "", 6, client_msg_id="remove:1", target=1)
    )
    assert again.duplicate and again.entry.seq == removal.entry.seq == 5
    log = {e.seq: e for e in await store.entries_after("listing:L1", 0, 10)}
    assert (log[1].text, log[1].deleted, log[1].removed) == ("", True, True)
    assert log[2].text == "" and log[5].kind == "remove" and log[5].target == 1
    assert (log[3].deleted, log[3].removed) == (True, False)  # its author's delete
    history = await store.history("listing:L1", None, 10)
    assert [(e.seq, e.removed) for e in history] == [(3, False), (1, True)]


async def test_resolving_an_item_moves_it_to_the_resolved_queue_once(store: Store) -> None:
    await store.file_report("r1", snapshot(3), Flag(ANN, "spam", None, 1000), created_event("r1"))
    done = await store.resolve_report("r1", {"action": "dismiss", "ts": 2000})
    assert done is not None and done.state == "resolved"
    assert done.resolution == {"action": "dismiss", "ts": 2000} and done.updated_ts == 2000
    later = await store.resolve_report("r1", {"action": "remove_message", "ts": 3000})
    assert later is not None and later.resolution == {"action": "dismiss", "ts": 2000}
    assert await store.reports("open", 0, 10) == []
    assert [r.id for r in await store.reports("resolved", 0, 10)] == ["r1"]
    assert await store.resolve_report("nope", {"action": "dismiss", "ts": 1}) is None
    # A new reporter opens it again.
    await store.file_report("r9", snapshot(3), Flag(CAT, "scam", None, 4000), created_event("r9"))
    [reopened] = await store.reports("open", 0, 10)
    assert reopened.id == "r1" and reopened.reporters == 2
    assert await store.reports("resolved", 0, 10) == []


async def test_one_restriction_per_member_listed_while_in_force(store: Store) -> None:
    assert await store.get_restriction(BOB) is None
    await store.put_restriction(Restriction("bob", "read_only", 5000, "why", 1000))
    await store.put_restriction(Restriction("cat", "suspended", None, "why not", 1000))
    await store.put_restriction(Restriction("dan", "read_only", 2000, "short", 1000))
    assert [r.user_id for r in await store.restrictions(3000)] == ["bob", "cat"]
    await store.put_restriction(Restriction("bob", "suspended", None, "worse", 4000))
    assert await store.get_restriction(BOB) == Restriction("bob", "suspended", None, "worse", 4000)
    assert await store.delete_restriction(BOB) is True
    assert await store.delete_restriction(BOB) is False
    assert [r.user_id for r in await store.restrictions(3000)] == ["cat"]


async def test_a_held_message_reads_without_its_words_until_released(store: Store) -> None:
    author = Author(BOB, "bob")
    await store.append("listing:L1", Draft("comment", "words kept", 1, author))
    await store.append("listing:L1", Draft("edit", "words edited", 2, author, target=1))
    await store.append("listing:L1", Draft("hold", "", 2, client_msg_id="hold:1", target=1))
    replayed = await store.entries_after("listing:L1", 0, 10)
    assert [(e.kind, e.text) for e in replayed] == [("comment", ""), ("edit", ""), ("hold", "")]
    held = await store.get_entry("listing:L1", 1)
    assert held is not None and (held.text, held.held, held.deleted) == ("", True, False)
    [shown] = await store.history("listing:L1", None, 10)
    assert shown.held and shown.text == ""
    await store.append("listing:L1", Draft("release", "", 4, client_msg_id="release:1", target=1))
    back = await store.get_entry("listing:L1", 1)
    assert back is not None and (back.text, back.held) == ("words edited", False)
    assert (await store.entries_after("listing:L1", 1, 1))[0].text == "words edited"
    # A hold after a delete changes nothing: the words are gone for good.
    await store.append("listing:L1", Draft("delete", "", 5, author, target=1))
    await store.append("listing:L1", Draft("hold", "", 6, client_msg_id="hold:1b", target=1))
    gone = await store.get_entry("listing:L1", 1)
    assert gone is not None and (gone.deleted, gone.held, gone.text) == (True, False, "")


async def test_a_members_reports_are_listed_and_forgotten_one_item_at_a_time(
    store: Store,
) -> None:
    for n in range(1, 6):  # more items than one step takes
        await store.file_report(
            f"r{n}", snapshot(n), Flag(ANN, "spam", f"ann-{n}", 1000 + n), created_event(f"r{n}")
        )
    await store.file_report("r9", snapshot(1), Flag(BOB, "scam", "bob's", 2000), created_event("x"))
    mine = [report async for page in store.member_reports(ANN) for report in page]
    assert sorted((r["report_id"], r["seq"], r["note"]) for r in mine) == [
        (f"r{n}", n, f"ann-{n}") for n in range(1, 6)
    ]
    assert mine[0].keys() == {"report_id", "room", "seq", "reason", "note", "ts"}

    assert await store.forget_reporter(ANN, 3) == 3
    assert await store.forget_reporter(ANN, 3) == 2
    assert await store.forget_reporter(ANN, 3) == 0
    assert [page async for page in store.member_reports(ANN)] == []
    first = await store.get_report("r1")
    assert first is not None and first.reporters == 2 and first.reasons == {"spam": 1, "scam": 1}
    assert first.notes == [
        {"reason": "spam", "note": None, "ts": 1001},
        {"reason": "scam", "note": "bob's", "ts": 2000},
    ]
    again = await store.file_report(
        "r7", snapshot(1), Flag(ANN, "spam", None, 3000), created_event("r7")
    )
    assert again.duplicate is False and again.reporters == 3  # now a reporter anew
    [bobs] = [report async for page in store.member_reports(BOB) for report in page]
    assert (bobs["report_id"], bobs["note"]) == ("r1", "bob's")


async def test_dropping_a_members_lists_leaves_others_lists_of_them(store: Store) -> None:
    await store.block(ANN, BOB, 1000, 10)
    await store.block(BOB, ANN, 1000, 10)
    await store.mute(ANN, "listing:L1", 1000, 10)
    await store.drop_member_lists(ANN)
    await store.drop_member_lists(ANN)
    assert (await store.blocks(ANN, 10), await store.mutes(ANN, 10)) == ([], [])
    assert await store.blocks(BOB, 10) == [(ANN, 1000)]
