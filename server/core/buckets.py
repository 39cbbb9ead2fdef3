"""A histogram as plain numbers, cheap enough for the hot path.

``GET /metrics`` reads it at scrape time (``server/metrics.py``); whoever
observes only bumps an int and a sum, with no lock and no allocation. One
writer per instance (the event loop, or the SQLite writer thread): a scrape
that reads it meanwhile may see the sum a step ahead of the counts, which
Prometheus tolerates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable


class Buckets:
    """Counts of observations per upper bound (``le``), the last one unbounded."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bucket bounds must be strictly increasing")
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0  # the sum of the observations

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, observations <= le)`` pairs, ending with ``+Inf``."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return pairs
