"""How many connections one member, or one client address, may hold on a hub.

A count per key under a ceiling: ``admit`` counts a connection in, or refuses
it at the ceiling; ``release`` counts an admitted one out. A ceiling of 0 is
none, and then nothing is counted. A key is forgotten when its count falls to
zero, so the table holds only who is connected now.
"""

from __future__ import annotations


class ConnectionCap:
    __slots__ = ("_held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # connections per key; 0: no ceiling
        self._held: dict[str, int] = {}

    def admit(self, key: str) -> bool:
        """Count one more connection of ``key``; ``False`` means: refuse it."""
        if not self.limit:
            return True
        held = self._held.get(key, 0)
        if held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str) -> None:
        """Count out a connection that ``admit`` let in."""
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def __len__(self) -> int:
        """Keys holding at least one connection."""
        return len(self._held)
