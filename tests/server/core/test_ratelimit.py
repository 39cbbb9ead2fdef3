"""The write rate limits, per connection and per member, on a fake clock."""

from __future__ import annotations

import pytest

from parley.server.core.clock import FakeClock
from parley.server.core.ratelimit import MemberBuckets, TokenBucket


def test_a_burst_is_allowed_then_writes_are_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, now=clock.now())
    assert [bucket.take(clock.now()) for _ in range(7)] == [True] * 5 + [False] * 2


def test_tokens_come_back_at_the_rate_and_never_past_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, now=clock.now())
    for _ in range(5):
        assert bucket.take(clock.now())
    clock.advance(0.5)  # one token at 2 per second
    assert bucket.take(clock.now())
    assert not bucket.take(clock.now())
    clock.advance(3600)  # an hour idle refills to the burst only
    assert [bucket.take(clock.now()) for _ in range(6)] == [True] * 5 + [False]


def test_a_clock_going_backwards_refills_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, now=clock.now())
    assert bucket.take(clock.now())
    clock.advance(-10)
    assert not bucket.take(clock.now())


def test_a_take_may_cost_several_tokens_and_takes_none_when_short() -> None:
    bucket = TokenBucket(rate=1.0, burst=5, now=0.0)
    assert bucket.take(0.0, 3)
    assert not bucket.take(0.0, 3)  # two left: all or nothing
    assert bucket.take(0.0, 2)
    assert bucket.take(3.0, 3)  # three seconds refill three tokens


def test_a_refund_gives_back_what_the_take_spent_and_no_more() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, now=0.0)
    assert bucket.take(0.0)
    bucket.refund()  # another limit refused the write: this one costs nothing
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    bucket.refund(5)  # never past the burst
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]


# Per member: one bucket for all of a member's connections.


def test_a_member_has_one_burst_whoever_else_writes() -> None:
    clock = FakeClock()
    members = MemberBuckets(rate=1.0, burst=3, limit=10)
    assert [members.take("u1", clock.now()) for _ in range(4)] == [True] * 3 + [False]
    assert [members.take("u2", clock.now()) for _ in range(4)] == [True] * 3 + [False]


def test_a_members_tokens_come_back_at_the_rate_and_never_past_the_burst() -> None:
    clock = FakeClock()
    members = MemberBuckets(rate=2.0, burst=3, limit=10)
    for _ in range(3):
        assert members.take("u1", clock.now())
    clock.advance(0.5)  # one token at 2 per second
    assert members.take("u1", clock.now())
    assert not members.take("u1", clock.now())
    clock.advance(3600)
    assert [members.take("u1", clock.now()) for _ in range(4)] == [True] * 3 + [False]


def test_a_member_take_may_cost_several_tokens_and_takes_none_when_short() -> None:
    members = MemberBuckets(rate=1.0, burst=5, limit=10)
    assert members.take("u1", 0.0, 3)
    assert not members.take("u1", 0.0, 3)
    assert members.take("u1", 0.0, 2)


def test_members_tracked_stay_under_the_limit() -> None:
    clock = FakeClock()
    members = MemberBuckets(rate=0.001, burst=1, limit=3)
    for member in ("u1", "u2", "u3"):
        assert members.take(member, clock.now())
    assert len(members) == 3
    assert not members.take("u1", clock.now())  # tracked: its bucket is empty
    assert members.take("u4", clock.now())  # one more: the map starts over
    assert len(members) == 1
    assert members.take("u1", clock.now())  # a bound, not a policy: u1 is full again
    for i in range(1000):
        members.take(f"m{i}", clock.now())
        assert len(members) <= 3


def test_tracking_no_member_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        MemberBuckets(rate=1.0, burst=1, limit=0)
