"""What the hub knows: members, listings, orders and the entries of a room's log.

A room's log is a gap-free sequence of entries numbered from 1 by ``seq``:
``comment`` and ``system`` entries are messages; ``edit`` and ``delete``
entries change an earlier message (``target``) and take a ``seq`` of their own,
so a client resuming with ``since`` also learns of edits and deletions it missed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, NewType

UserId = NewType("UserId", str)
ListingId = NewType("ListingId", str)
OrderId = NewType("OrderId", str)

ID_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

EntryKind = Literal["comment", "system", "edit", "delete"]
MESSAGE_KINDS: Final = frozenset({"comment", "system"})
LISTING_STATUSES: Final = frozenset({"active", "reserved", "sold", "hidden", "deleted"})
ORDER_STATUSES: Final = frozenset(
    {"created", "shipped", "delivered", "return_requested", "completed", "cancelled"}
)


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    name: str
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
class Draft:
    """An entry before the store gives it a ``seq``."""

    kind: EntryKind
    text: str
    ts: int
    author: Author | None = None
    client_msg_id: str | None = None
    target: int | None = None
    data: dict[str, Any] | None = None


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
        return out

    def to_event(self) -> dict[str, Any]:
        """The live event a subscriber receives for this log entry."""
        if self.kind == "edit":
            return {
                "event": "message_edited",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "text": self.text,
                "ts": self.ts,
            }
        if self.kind == "delete":
            return {
                "event": "message_deleted",
                "room": self.room,
                "seq": self.seq,
                "target": self.target,
                "ts": self.ts,
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
