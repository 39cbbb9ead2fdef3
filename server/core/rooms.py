"""Who may do what in which room (R1, R2, R9).

Three kinds of room:

- ``listing:<id>``  public (R1): every authenticated member reads and posts,
  once the backend has registered the listing; otherwise ``not_found``.
- ``order:<id>``    private (R2, R9): exists only once the backend reported the
  order (``order_required`` before); only its buyer and seller (``forbidden``
  for anyone else).
- ``user:<id>``     a member's own notification channel, joined on connect and
  never named by a client.

There is no other kind: no direct message, no private room without an order.
Members edit and delete their own comments; a listing's seller may delete any
comment in the listing's room. System messages are nobody's to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Entry, Listing, Order

RoomKind = Literal["listing", "order", "user"]


@dataclass(frozen=True, slots=True)
class RoomRef:
    kind: RoomKind
    id: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.id}"


RoomCheck = Callable[[str, RoomRef, Listing | None, Order | None], None]


def room_ref(room: str) -> RoomRef:
    """Split a room name already validated by the protocol layer."""
    kind, _, rid = room.partition(":")
    if kind == "listing":
        return RoomRef("listing", rid)
    if kind == "order":
        return RoomRef("order", rid)
    if kind == "user":
        return RoomRef("user", rid)
    raise ParleyError(ErrorCode.bad_request, f"no such room kind {kind[:16]!r}")


def listing_room(listing_id: str) -> str:
    return f"listing:{listing_id}"


def order_room(order_id: str) -> str:
    return f"order:{order_id}"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def check_may_read(
    user_id: str, ref: RoomRef, listing: Listing | None, order: Order | None
) -> None:
    """Raise unless ``user_id`` may subscribe to and read ``ref``.

    The caller looks up the listing (for listing rooms) or the order (for order
    rooms) and passes what it found, ``None`` if nothing.
    """
    if ref.kind == "listing":
        if listing is None or listing.status == "deleted":
            raise ParleyError(ErrorCode.not_found, f"no listing {ref.id}")
        return
    if ref.kind == "order":
        if order is None:
            raise ParleyError(
                ErrorCode.order_required,
                "a private conversation opens only once an order exists",
            )
        if not order.is_party(user_id):
            raise ParleyError(ErrorCode.forbidden, "only the order's buyer and seller")
        return
    raise ParleyError(ErrorCode.forbidden, "a member's own channel is joined on connect")


def check_may_post(
    user_id: str, ref: RoomRef, listing: Listing | None, order: Order | None
) -> None:
    """Posting follows reading: a public room is open to every member (R1)."""
    check_may_read(user_id, ref, listing, order)


def check_may_edit(user_id: str, target: Entry | None) -> Entry:
    if target is None or not target.is_message or target.deleted:
        raise ParleyError(ErrorCode.not_found, "no such message")
    if target.kind != "comment" or target.author is None or target.author.id != user_id:
        raise ParleyError(ErrorCode.forbidden, "members edit only their own comments")
    return target


def check_may_delete(user_id: str, target: Entry | None, listing: Listing | None) -> Entry:
    if target is None or not target.is_message or target.deleted:
        raise ParleyError(ErrorCode.not_found, "no such message")
    if target.kind != "comment" or target.author is None:
        raise ParleyError(ErrorCode.forbidden, "system messages cannot be deleted")
    if target.author.id == user_id:
        return target
    if listing is not None and listing.seller_id == user_id:
        return target
    raise ParleyError(
        ErrorCode.forbidden, "members delete their own comments; sellers any on their listing"
    )
