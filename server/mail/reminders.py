"""Unread reminders (``unread_reminder_minutes``): one e-mail per conversation left unread.

When a member writes in an order room and the other party is away (the case
where they get an ``order_message`` notification), the hub appends a
*candidate* to the log room ``mail:reminders``: this member, this room, this
message. Candidates are in time order; the mail sender takes each once it is
``unread_reminder_minutes`` old. If the member's read mark in the room is
still before the message, it queues an ``unread_reminder`` e-mail keyed by the
room, the member and that read mark: the store's idempotent append turns every
other message of the same unread stretch into nothing. Reading moves the
mark, so the next stretch left unread gets its own reminder; one read in
time gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from parley.server.core.model import Draft, Entry, OrderId, UserId
from parley.server.store.base import Store

REMINDER_ROOM: Final = "mail:reminders"


@dataclass(frozen=True, slots=True)
class ReminderCandidate:
    order_id: OrderId
    user_id: UserId  # who may have left it unread
    seq: int  # the message in the order room

    def to_data(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "user_id": self.user_id, "seq": self.seq}

    @classmethod
    def from_entry(cls, entry: Entry) -> ReminderCandidate | None:
        data = entry.data or {}
        order_id, user_id, seq = data.get("order_id"), data.get("user_id"), data.get("seq")
        if not isinstance(order_id, str) or not isinstance(user_id, str) or type(seq) is not int:
            return None
        return cls(OrderId(order_id), UserId(user_id), seq)


async def queue_unread_reminder(
    store: Store, order_id: str, user_id: str, seq: int, ts: int
) -> None:
    """Note that ``user_id`` has message ``seq`` of ``order:<order_id>`` to read, from ``ts``."""
    candidate = ReminderCandidate(OrderId(order_id), UserId(user_id), seq)
    key = f"unread:{order_id}:{user_id}:{seq}"  # a retried post notes nothing more
    draft = Draft(kind="event", text="", ts=ts, client_msg_id=key, data=candidate.to_data())
    await store.append(REMINDER_ROOM, draft)
