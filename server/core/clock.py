"""The clock the domain reads, injected so tests move time without sleeping."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class FakeClock:
    """A clock that moves only when told: 72 hours pass in a microsecond."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def to_ms(seconds: float) -> int:
    """Timestamps on the wire and in the store are integer milliseconds."""
    return int(seconds * 1000)
