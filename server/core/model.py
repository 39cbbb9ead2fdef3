"""What the hub knows: members, listings, orders and the entries of a room's log.

A room's log is a gap-free sequence of entries numbered from 1 by ``seq``:
``comment`` and ``system`` entries are messages; ``edit`` and ``delete``
entries change an earlier message (``target``) and take a ``seq`` of their own,
so a client resuming with ``since`` also learns of edits and deletions it missed.
``close`` and ``reopen`` entries record the backend closing a room (its
watchers are let go, members' writes refused) and opening it again.

A member's own room ``user:<id>`` holds their inbox: ``notification``
entries, and ``read`` entries that move the member's read mark (``target``)
so that every device learns of it the same way. A notification that quotes a
message follows it there: an ``edit`` entry (its ``data`` the notification as it
now reads) when the message's text changes, a ``delete`` entry when the message
is deleted or no longer concerns the member.

In an order room, a ``receipt`` entry says that a party's read mark moved
(``data``: ``{"user_id", "up_to"}``), so that the counterpart and the reader's
other devices hear of it live; it is neither a message nor unread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, NewType

UserId = NewType("UserId", str)
ListingId = NewType("ListingId", str)
OrderId = NewType("OrderId", str)

ID_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

EntryKind = Literal[
    "comment",
    "system",
    "edit",
    "delete",
    "notification",
    "read",
    "close",
    "reopen",
    "offer",  # a negotiation's new state, in both parties' own rooms: not a notification
    "event",  # an event for the marketplace backend, in its feed (``backend:events``)
    "receipt",  # a party's read mark moved, in an order room: not a message
    "remove",  # the moderators removed a message (``target``): a delete that says so
    "hold",  # enough members reported a public comment (``target``): hidden pending review
    "release",  # the moderators dismissed the reports: the held comment shows again
]
# What history pages show: messages in rooms, notifications in a member's inbox.
MESSAGE_KINDS: Final = frozenset({"comment", "system", "notification"})
# Entries a member writes; the store refuses them in a closed room.
MEMBER_KINDS: Final = frozenset({"comment", "edit", "delete"})
LISTING_STATUSES: Final = frozenset({"active", "reserved", "sold", "hidden", "deleted"})
ORDER_STATUSES: Final = frozenset(
    {
        "created",
        "shipped",
        "delivered",
        "return_requested",
        "return_accepted",
        "return_declined",
        "completed",
        "cancelled",
    }
)


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    name: str  # the username: unique case-insensitively (``mentions.username_key``)
    locale: str = "en"
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Money:
    """Integer minor units (cents) and an ISO 4217 currency: never floats."""

    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Listing:
    id: ListingId
    seller_id: UserId
    title: str
    price: Money
    photo_url: str | None = None
    offers_enabled: bool = False
    status: str = "active"


@dataclass(frozen=True, slots=True)
class Order:
    id: OrderId
    listing_id: ListingId
    buyer_id: UserId
    seller_id: UserId
    status: str = "created"
    created_ts: int = 0

    def is_party(self, user_id: str) -> bool:
        return user_id in (self.buyer_id, self.seller_id)


@dataclass(frozen=True, slots=True)
class Author:
    id: UserId
    name: str


@dataclass(frozen=True, slots=True)
class Mention:
    """A resolved ``@name`` in a message: who, and where in the text (code points)."""

    user_id: UserId
    name: str
    start: int
    end: int

    def to_wire(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "name": self.name, "start": self.start, "end": self.end}

    def to_row(self) -> list[Any]:
        return [self.user_id, self.name, self.start, self.end]

    @classmethod
    def from_row(cls, row: list[Any]) -> Mention:
        return cls(UserId(row[0]), row[1], row[2], row[3])


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry before the store gives it a ``seq``."""

    kind: EntryKind
    text: str
    ts: int
    author: Author | None = None
    client_msg_id: str | None = None
    target: int | None = None
    data: dict[str, Any] | None = None
    mentions: tuple[Mention, ...] = ()
    masked_kinds: tuple[str, ...] = ()  # contact details masked in the text (R8)


@dataclass(frozen=True, slots=True)
class Entry:
    room: str
    seq: int
    kind: EntryKind
    text: str
    ts: int
    author: Author | None = None
    client_msg_id: str | None = None
    target: int | None = None
    data: dict[str, Any] | None = None
    edited_ts: int | None = None
    deleted: bool = False
    mentions: tuple[Mention, ...] = ()
    masked_kinds: tuple[str, ...] = ()
    removed: bool = False  # deleted by the moderators (``deleted`` is set too)
    held: bool = False  # hidden pending review: read back without its text

    @classmethod
    def from_draft(cls, room: str, seq: int, draft: Draft) -> Entry:
        return cls(
            room,
            seq,
            draft.kind,
            draft.text,
            draft.ts,
            draft.author,
            draft.client_msg_id,
            draft.target,
            draft.data,
            mentions=draft.mentions,
            masked_kinds=draft.masked_kinds,
        )

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGE_KINDS

    def to_wire(self) -> dict[str, Any]:
        """The message as history and ``message`` events show it."""
        out: dict[str, Any] = {
            "room": self.room,
            "seq": self.seq,
            "kind": self.kind,
            "author": None
            if self.author is None
            else {"id": self.author.id, "name": self.author.name},
            "text": self.text,
            "ts": self.ts,
        }
        if self.data is not None:
            out["data"] = self.data
        if self.edited_ts is not None:
            out["edited_ts"] = self.edited_ts
        if self.deleted:
            out["deleted"] = True
        if self.removed:
            out["removed"] = True
        if self.held:
            out["held"] = True
        if self.mentions:
            out["mentions"] = [m.to_wire() for m in self.mentions]
        if self.masked_kinds:
            out["masked_kinds"] = list(self.masked_kinds)
        return out

    def to_event(self) -> dict[str, Any]:
        """The live event a subscriber receives for this log entry."""
        if self.kind == "edit":
            edited = {
                "event": "message_edited",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "text": self.text,
                "ts": self.ts,
                "mentions": [m.to_wire() for m in self.mentions],
                "masked_kinds": list(self.masked_kinds),
            }
            if self.data is not None:  # in an inbox: the notification as it now reads
                edited["notification"] = self.data
            return edited
        if self.kind == "delete":
            return {
                "event": "message_deleted",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "ts": self.ts,
            }
        if self.kind in ("hold", "release"):
            return {
                "event": "message_held" if self.kind == "hold" else "message_released",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "ts": self.ts,
            }
        if self.kind == "remove":
            return {
                "event": "message_removed",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "ts": self.ts,
            }
        if self.kind == "notification":
            return {
                "event": "notification",
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "notification": self.data or {},
            }
        if self.kind == "read":
            data = self.data or {}
            return {
                "event": "notifications_read",
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "up_to": data.get("up_to", self.target),
                "unread": data.get("unread"),
            }
        if self.kind in ("close", "reopen"):
            return {
                "event": "room_closed" if self.kind == "close" else "room_reopened",
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "reason": (self.data or {}).get("reason"),
            }
        if self.kind == "receipt":
            data = self.data or {}
            return {
                "event": "read",
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "user_id": data.get("user_id"),
                "up_to": data.get("up_to"),
            }
        if self.kind == "offer":
            return {
                "event": "offer",
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "offer": self.data or {},
            }
        return {"event": "message", **self.to_wire()}


@dataclass(frozen=True, slots=True)
class AppendResult:
    entry: Entry
    duplicate: bool = False  # a retry of an already stored client_msg_id


@dataclass(frozen=True, slots=True)
class RoomHead:
    seq: int
    epoch: str
