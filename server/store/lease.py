"""Leases within one process (``LocalLeases``, mixed into the embedded store).

The embedded store serves one hub process, so its leases live in memory: the
holders that compete for one are the tasks of this process.
"""

from __future__ import annotations

import time


class LocalLeases:
    """``try_lease`` and ``release_lease`` of the store contract, in memory."""

    _leases: dict[str, tuple[str, float]]  # name -> (holder, monotonic expiry)

    def _lease_table(self) -> dict[str, tuple[str, float]]:
        try:
            return self._leases
        except AttributeError:  # made on first use: the store's __init__ stays its own
            self._leases = {}
            return self._leases

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        leases = self._lease_table()
        now = time.monotonic()
        current = leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        leases[name] = (holder, now + ttl_ms / 1000)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        leases = self._lease_table()
        current = leases.get(name)
        if current is not None and current[0] == holder:
            del leases[name]
