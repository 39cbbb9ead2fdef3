"""How fast one connection may write: a token bucket on an injected clock.

A member typing comments never notices it; a script flooding a room gets
``rate_limited`` replies instead of filling the log. Reads are not limited
here: they are bounded by the per-connection in-flight limit.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate  # tokens added per second
        self.burst = burst  # most tokens held, and the first ones
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float, cost: int = 1) -> bool:
        """Spend ``cost`` tokens if there are as many; ``False`` means: refuse."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False
