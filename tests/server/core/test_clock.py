"""The injected clock: time moves when a test says so."""

from __future__ import annotations

from parley.server.core.clock import Clock, FakeClock, to_ms


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start=1_800_000_000.0)
    assert clock.now() == clock.now() == 1_800_000_000.0
    clock.advance(72 * 3600)
    assert clock.now() == 1_800_000_000.0 + 72 * 3600


def test_fake_clock_is_a_clock() -> None:
    clock: Clock = FakeClock()
    assert isinstance(clock.now(), float)


def test_wire_timestamps_are_integer_milliseconds() -> None:
    assert to_ms(1_800_000_000.0) == 1_800_000_000_000
    assert to_ms(1.2345) == 1234
    assert isinstance(to_ms(1.0), int)
