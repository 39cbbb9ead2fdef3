"""Retention of rooms, as rules: which rooms are erased, and when.

Two settings, both off by default (0 days):

- ``retention_order_days``: an order room is erased this many days after its
  order ended. An order ends when it reaches a status after which nothing is
  expected of the parties (``ORDER_ENDED``): delivered, a return accepted or
  declined, completed, cancelled. A later status that opens the order again (a
  return requested after delivery) cancels that end; the next end starts a new
  wait.
- ``retention_listing_days``: a deleted listing's public room is erased this many
  days after the deletion; a listing restored meanwhile keeps its room.

Erasing a room erases the words of its members' messages as a member's own
delete does (``core.erasure.erase_draft``): tombstones keep ``seq`` gap-free;
system messages (order statuses, listing changes) carry no member's words and
stay. Each end or deletion is recorded as an event of a log room of its own
(``ORDERS_LOG``, ``LISTINGS_LOG``), in time order, so the events due are
always at the front.
"""

from __future__ import annotations

from typing import Any, Final

from parley.server.core.order_status import ENDED

ORDER_ENDED: Final = frozenset({"delivered", "return_accepted", "return_declined", *ENDED})
ORDERS_LOG: Final = "retention:orders"
LISTINGS_LOG: Final = "retention:listings"
DAY_MS: Final = 86_400_000


def order_ended(before: str, after: str) -> bool:
    """Whether this status change ends the order (a new end, not a repeat)."""
    return after in ORDER_ENDED and after != before


def order_event(order_id: str, status: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": status}


def listing_event(listing_id: str) -> dict[str, Any]:
    return {"listing_id": listing_id}


def due(recorded_ms: int, days: float, now_ms: int) -> bool:
    """Whether an end or deletion recorded at ``recorded_ms`` is ``days`` old."""
    return recorded_ms + int(days * DAY_MS) <= now_ms


def order_still_ended(event: dict[str, Any], status: str | None) -> bool:
    """The order is still in the status whose end was recorded: it did not open again
    (if it did and ended again, a later event stands for that end)."""
    return status is not None and status == event.get("status")
