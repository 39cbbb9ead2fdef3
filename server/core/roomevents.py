"""System messages: what the backend's reports look like inside a room (R3, R9).

Each has a ``data`` object for widgets to render in the member's language, and
an English ``text`` for those that don't.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Order

LISTING_CHANGES: Final = frozenset({"edited", "photos_added", "price_changed", "status_changed"})
OFF_PLATFORM_DISCLAIMER: Final = (
    "Transactions made outside the platform are not covered by buyer protection."
)


@dataclass(frozen=True, slots=True)
class SystemMessage:
    text: str
    data: dict[str, Any]


def listing_change(body: dict[str, Any]) -> SystemMessage:
    """R3: ``{"type": "edited" | "photos_added" | ..., "count"?: int, "fields"?: [str]}``."""
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in LISTING_CHANGES:
        raise ParleyError(
            ErrorCode.bad_request, f"type must be one of {', '.join(sorted(LISTING_CHANGES))}"
        )
    data: dict[str, Any] = {"type": f"listing_{kind}"}
    unknown = set(body) - {"type", "count", "fields", "event_id"}
    if unknown:
        raise ParleyError(ErrorCode.bad_request, f"unknown field(s): {', '.join(sorted(unknown))}")
    if kind == "photos_added":
        count = body.get("count", 1)
        if type(count) is not int or not 1 <= count <= 100:
            raise ParleyError(ErrorCode.bad_request, "count must be an integer 1..100")
        data["count"] = count
        noun = "photo" if count == 1 else "photos"
        return SystemMessage(f"The seller added {count} {noun}.", data)
    fields = body.get("fields")
    if fields is not None:
        if (
            not isinstance(fields, list)
            or not all(isinstance(f, str) and 0 < len(f) <= 32 for f in fields)
            or len(fields) > 20
        ):
            raise ParleyError(ErrorCode.bad_request, "fields must be a list of short names")
        data["fields"] = fields
    if kind == "price_changed":
        return SystemMessage("The seller changed the price.", data)
    if kind == "status_changed":
        return SystemMessage("The listing's status changed.", data)
    return SystemMessage("The seller edited the listing.", data)


def order_opened(order: Order) -> SystemMessage:
    """R9, R12: the first message of an order room."""
    return SystemMessage(
        "Order confirmed. Use this private conversation to confirm the address, share a "
        "tracking number, discuss a return or check the order's status. " + OFF_PLATFORM_DISCLAIMER,
        {
            "type": "order_opened",
            "order_id": order.id,
            "listing_id": order.listing_id,
            "buyer_id": order.buyer_id,
            "seller_id": order.seller_id,
            "disclaimer": "off_platform_not_covered",
        },
    )
