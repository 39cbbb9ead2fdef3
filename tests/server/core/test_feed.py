"""RoomFeed: a room's entries go out in ``seq`` order, with no gap and no repeat."""

from __future__ import annotations

from parley.server.core.feed import RoomFeed
from parley.server.core.model import Entry

ROOM = "listing:42"


def entry(seq: int) -> Entry:
    return Entry(ROOM, seq, "comment", f"comment {seq}", 1_800_000_000_000 + seq)


def seqs(entries: list[Entry]) -> list[int]:
    return [e.seq for e in entries]


def test_entries_in_order_go_out_at_once() -> None:
    feed = RoomFeed("e1", 0)
    for seq in (1, 2, 3):
        step = feed.accept(entry(seq), "e1")
        assert seqs(step.ready) == [seq]
        assert step.fill_after is None
        assert not step.reset
    assert feed.last_seq == 3
    assert not feed.holding


def test_a_feed_starts_after_the_head_it_was_opened_at() -> None:
    feed = RoomFeed("e1", 10)
    assert feed.accept(entry(10), "e1").ready == []
    assert seqs(feed.accept(entry(11), "e1").ready) == [11]


def test_a_repeat_is_dropped() -> None:
    feed = RoomFeed("e1", 0)
    feed.accept(entry(1), "e1")
    feed.accept(entry(2), "e1")
    for seq in (2, 1):
        step = feed.accept(entry(seq), "e1")
        assert step.ready == []
        assert step.fill_after is None
        assert not step.reset
    assert feed.last_seq == 2


def test_a_gap_is_held_and_asked_for_then_released_in_order() -> None:
    feed = RoomFeed("e1", 1)
    step = feed.accept(entry(4), "e1")
    assert step.ready == []
    assert step.fill_after == 1  # read the log after 1
    assert feed.holding
    step = feed.accept(entry(3), "e1")
    assert step.ready == []
    assert step.fill_after == 1
    step = feed.accept(entry(2), "e1")  # the fill arrives
    assert seqs(step.ready) == [2, 3, 4]
    assert step.fill_after is None
    assert feed.last_seq == 4
    assert not feed.holding


def test_a_partly_filled_gap_asks_for_the_rest() -> None:
    feed = RoomFeed("e1", 0)
    feed.accept(entry(3), "e1")
    feed.accept(entry(5), "e1")
    step = feed.accept(entry(1), "e1")
    assert seqs(step.ready) == [1]
    assert step.fill_after == 1
    step = feed.accept(entry(2), "e1")
    assert seqs(step.ready) == [2, 3]
    assert step.fill_after == 3
    step = feed.accept(entry(4), "e1")
    assert seqs(step.ready) == [4, 5]
    assert step.fill_after is None
    assert not feed.holding


def test_a_held_entry_seen_twice_goes_out_once() -> None:
    feed = RoomFeed("e1", 0)
    feed.accept(entry(2), "e1")
    feed.accept(entry(2), "e1")
    assert seqs(feed.accept(entry(1), "e1").ready) == [1, 2]
    assert feed.accept(entry(2), "e1").ready == []


def test_another_epoch_resets_the_feed() -> None:
    feed = RoomFeed("e1", 5)
    feed.accept(entry(8), "e1")  # held
    step = feed.accept(entry(3), "e2")
    assert step.reset
    assert step.ready == []
    assert step.fill_after is None
    assert feed.epoch == "e2"
    assert feed.last_seq == 3
    assert not feed.holding  # what was held belonged to the old log
    assert seqs(feed.accept(entry(4), "e2").ready) == [4]


def test_a_head_read_overtaken_by_live_entries_is_no_reset() -> None:
    # The head is read on one connection while the bus delivers 11 and 12 on
    # another: its answer (10) arrives after them. The log did not go back.
    feed = RoomFeed("e1", 10)
    mark = feed.mark()
    feed.accept(entry(11), "e1")
    feed.accept(entry(12), "e1")
    step = feed.resync(mark, "e1", 10)
    assert not step.reset
    assert step.fill_after is None
    assert (feed.epoch, feed.last_seq) == ("e1", 12)
    assert seqs(feed.accept(entry(13), "e1").ready) == [13]


def test_a_head_behind_what_was_delivered_before_the_read_resets_the_feed() -> None:
    feed = RoomFeed("e1", 10)
    feed.accept(entry(12), "e1")  # held
    step = feed.resync(feed.mark(), "e1", 7)  # restored from an older copy
    assert step.reset
    assert (feed.epoch, feed.last_seq) == ("e1", 7)
    assert not feed.holding
    assert seqs(feed.accept(entry(8), "e1").ready) == [8]


def test_a_head_of_another_epoch_resets_the_feed() -> None:
    feed = RoomFeed("e1", 10)
    step = feed.resync(feed.mark(), "e2", 30)
    assert step.reset
    assert (feed.epoch, feed.last_seq) == ("e2", 30)


def test_a_head_ahead_of_the_feed_asks_for_what_was_missed() -> None:
    feed = RoomFeed("e1", 10)
    step = feed.resync(feed.mark(), "e1", 14)
    assert not step.reset
    assert step.fill_after == 10
    assert feed.last_seq == 10  # the fill delivers 11 to 14


def test_a_head_read_before_a_reset_by_a_live_entry_changes_nothing() -> None:
    feed = RoomFeed("e1", 10)
    mark = feed.mark()
    assert feed.accept(entry(1), "e2").reset  # the log was reset meanwhile
    step = feed.resync(mark, "e1", 10)  # the read saw the old log
    assert not step.reset
    assert step.fill_after is None
    assert (feed.epoch, feed.last_seq) == ("e2", 1)
