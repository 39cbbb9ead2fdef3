"""Delivering a room's entries in ``seq`` order, with no gap and no repeat.

A hub learns of new entries from its fan-out bus. A bus may deliver late, twice,
out of order, or not at all (Redis pub/sub drops what it cannot deliver while
disconnected). ``RoomFeed`` decides, per room, what may go out now:

- ``seq == last + 1``  deliver it, then any buffered successors;
- ``seq <= last``       a repeat: drop it;
- ``seq > last + 1``    a gap: hold it and ask for ``(last, seq)`` from the log;
- another ``epoch``      the room's log was reset: subscribers must reload.

A hub also checks a feed against the room's head (``resync``) when its bus may
have lost announcements. The head is read on one connection while entries keep
arriving on another: by the time its answer is read, the feed may be past it.
Only a head behind what had been delivered *before the read was sent* (``mark``)
says that the log went back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.server.core.model import Entry


@dataclass(slots=True)
class FeedStep:
    ready: list[Entry] = field(default_factory=list)
    fill_after: int | None = None  # fetch the log after this seq, then feed it back
    reset: bool = False  # the epoch changed: subscribers must reload


@dataclass(frozen=True, slots=True)
class FeedMark:
    """Where a feed stood when a head read was sent."""

    epoch: str
    last_seq: int


class RoomFeed:
    __slots__ = ("_held", "epoch", "last_seq")

    def __init__(self, epoch: str, last_seq: int) -> None:
        self.epoch = epoch
        self.last_seq = last_seq
        self._held: dict[int, Entry] = {}

    def accept(self, entry: Entry, epoch: str) -> FeedStep:
        if epoch != self.epoch:
            self.epoch = epoch
            self.last_seq = entry.seq
            self._held.clear()
            return FeedStep(reset=True)
        seq = entry.seq
        if seq <= self.last_seq:
            return FeedStep()
        if seq > self.last_seq + 1:
            self._held[seq] = entry
            return FeedStep(fill_after=self.last_seq)
        step = FeedStep(ready=[entry])
        self.last_seq = seq
        while self._held:
            nxt = self._held.pop(self.last_seq + 1, None)
            if nxt is None:
                break
            step.ready.append(nxt)
            self.last_seq = nxt.seq
        if self._held:
            step.fill_after = self.last_seq
        return step

    def mark(self) -> FeedMark:
        return FeedMark(self.epoch, self.last_seq)

    def resync(self, mark: FeedMark, epoch: str, seq: int) -> FeedStep:
        """The room's head, read after ``mark`` was taken, is ``(epoch, seq)``.

        Entries delivered while the read was on its way are past ``seq`` and are
        no sign of a reset; a head behind ``mark``, or of another epoch, is. A
        feed reset meanwhile by an entry of another epoch knows a newer log than
        the read did: the read is stale and changes nothing.
        """
        if self.epoch != mark.epoch:
            return FeedStep()
        if epoch != self.epoch or seq < mark.last_seq:
            self.epoch = epoch
            self.last_seq = seq
            self._held.clear()
            return FeedStep(reset=True)
        if seq > self.last_seq:
            return FeedStep(fill_after=self.last_seq)
        return FeedStep()

    @property
    def holding(self) -> bool:
        return bool(self._held)
