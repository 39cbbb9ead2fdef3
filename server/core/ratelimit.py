"""How fast writers may go: token buckets on an injected clock.

A member typing comments never notices them; a script flooding a room gets
``rate_limited`` replies instead of filling the log. ``TokenBucket`` limits one
connection; ``MemberBuckets`` one member across all their connections on a
hub (writes, @mentions). Reads are not limited here: they are bounded by the
per-connection in-flight limit.
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

    def refund(self, cost: int = 1) -> None:
        """Give back what the last ``take`` spent, when another limit refused the action."""
        self._tokens = min(float(self.burst), self._tokens + cost)


class MemberBuckets:
    """One ``TokenBucket`` per member, made on the member's first take.

    At most ``limit`` members are tracked: past it every bucket is dropped,
    and all members start full again. That bounds memory, it is not a policy;
    a hub rarely sees that many distinct writers between two resets.
    """

    __slots__ = ("_buckets", "burst", "limit", "rate")

    def __init__(self, rate: float, burst: int, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit: at least one member must be tracked")
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, member: str, now: float, cost: int = 1) -> bool:
        """Spend ``cost`` of ``member``'s tokens; ``False`` means: refuse."""
        bucket = self._buckets.get(member)
        if bucket is None:
            if len(self._buckets) >= self.limit:
                self._buckets.clear()
            bucket = self._buckets[member] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now, cost)

    def __len__(self) -> int:
        """Members tracked now."""
        return len(self._buckets)
