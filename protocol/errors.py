"""Every error a client can get: stable codes, close codes, one root exception.

The exception tree::

    ParleyError                  root; carries a stable ``code`` and a human message
    ├── ProtocolError            the frame itself is wrong (decode, envelope, types)
    └── (all others by code)     raised by the domain, the store or the hub

A ``ParleyError`` becomes the ``error`` member of a reply. Codes never change
meaning once published; ``protocol/README.md`` documents each one.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Machine codes sent in ``{"error": {"code": ...}}``."""

    # The frame or the request is malformed.
    bad_frame = "bad_frame"  # not decodable JSON/MessagePack, or not an object
    bad_encoding = "bad_encoding"  # text frame on msgpack, binary on json, invalid UTF-8
    bad_request = "bad_request"  # missing/extra field, wrong type, bad value
    unknown_op = "unknown_op"
    missing_id = "missing_id"
    too_large = "too_large"  # a text over the configured limit
    # Session.
    not_connected = "not_connected"  # an op before connect
    already_connected = "already_connected"
    # Authorization and existence.
    forbidden = "forbidden"
    not_found = "not_found"
    order_required = "order_required"  # R2: no private conversation before an order
    contact_details = "contact_details"  # R8: the room refuses e-mails, phones, handles
    username_contact_details = "username_contact_details"  # R8: a name holding a phone, e-mail...
    not_subscribed = "not_subscribed"
    read_only = "read_only"  # an ended order's room, when order_room_after_end is read_only
    # Offers (R5-R7).
    offers_disabled = "offers_disabled"  # R5: the seller has not switched offers on for it
    listing_unavailable = "listing_unavailable"  # the listing is not active (reserved, sold...)
    not_your_turn = "not_your_turn"  # R5: that answer belongs to the other party
    offer_exists = "offer_exists"  # one open negotiation per buyer per listing
    offer_closed = "offer_closed"  # the negotiation ended; ``details.state`` says how
    offer_expired = "offer_expired"  # R7: the price waited 72 hours; ``details.expires_at``
    price_out_of_range = "price_out_of_range"  # not strictly between ``details`` bounds
    discount_too_small = "discount_too_small"  # R6: an offer to likers takes 10 % off or more
    too_many_recipients = "too_many_recipients"  # R6: at most 20 likers per offer
    # Members' choices and moderation.
    blocked = "blocked"  # an offer between two members one of whom blocked the other
    limit_reached = "limit_reached"  # a member's list (blocks, mutes) is full; ``details.max``
    restricted = "restricted"  # the moderators restricted the member; ``details.kind``, ``until``
    # Conflicts.
    conflict = "conflict"  # internal API: an order reported again with other parties
    # Load and availability.
    rate_limited = "rate_limited"  # over the connection's or the member's write budget; retry
    unavailable = "unavailable"  # the store cannot take the write now; retry
    internal = "internal"  # a bug; details are in the hub's log, never on the wire
    # Internal API only.
    unauthorized = "unauthorized"


class CloseCode(IntEnum):
    """WebSocket close codes the hub uses (4000-4999 are Parley's own)."""

    normal = 1000
    going_away = 1001
    protocol_error = 1002
    unsupported_data = 1003
    invalid_payload = 1007  # invalid UTF-8 in a text frame
    policy_violation = 1008
    message_too_big = 1009  # a frame over max_frame_bytes
    internal_error = 1011
    service_restart = 1012  # the hub is shutting down: reconnect elsewhere
    auth_failed = 4001  # token missing, expired, forged, wrong algorithm
    auth_timeout = 4002  # no connect frame within the deadline
    too_many_errors = 4003  # a client that keeps sending bad frames
    slow_consumer = 4008  # send buffer over its limit: reconnect and resume with since
    too_many_connections = 4009  # the member or the address holds its cap of connections
    suspended = 4010  # the moderators suspended the member: no connection until it ends


class ParleyError(Exception):
    """Root of every error Parley reports to a client or the backend."""

    code: ErrorCode = ErrorCode.internal

    def __init__(
        self, code: ErrorCode | str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details = details  # machine-readable specifics, for the codes that have some

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.details is not None:
            wire["details"] = self.details
        return wire


class ProtocolError(ParleyError):
    """The frame or the request envelope is malformed."""
