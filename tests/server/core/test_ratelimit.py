"""The write rate limit, on a fake clock."""

from __future__ import annotations

from parley.server.core.clock import FakeClock
from parley.server.core.ratelimit import TokenBucket


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
