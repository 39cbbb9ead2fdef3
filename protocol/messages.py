"""Requests of protocol v1: one frozen dataclass per op, validated in one pass.

``parse_request(obj, limits)`` takes a decoded frame and returns a request or
raises a ``ProtocolError`` with a stable code. Validation is strict: unknown
fields are refused (a typo must not silently do something else), integers are
never booleans, texts are bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError, ProtocolError

MAX_REQUEST_ID: Final = 2**53 - 1  # the largest integer every JSON peer reads exactly
MAX_CLIENT_MSG_ID: Final = 64
MAX_TOKEN: Final = 8192
HISTORY_MAX_LIMIT: Final = 100

ID_PATTERN: Final = r"[A-Za-z0-9_.\-]{1,64}"
_ROOM = re.compile(rf"(listing|order):({ID_PATTERN})")
_ID = re.compile(ID_PATTERN)
MAX_AMOUNT: Final = 2**53 - 1  # minor units; exact in every JSON peer
MAX_INT: Final = 2**53 - 1  # every other integer field (seq, since, before, up_to): the same bound
MAX_OFFER_RECIPIENTS_ASKED: Final = 100  # ids one offer_to_likers may name (20 are kept)
OFFER_ACTIONS: Final = frozenset({"accept", "decline", "counter", "withdraw"})
OFFER_STATES: Final = frozenset(
    {"open", "accepted", "declined", "withdrawn", "expired", "item_sold"}
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while validating; the hub builds one from config."""

    max_text_chars: int = 4000


@dataclass(frozen=True, slots=True)
class Connect:
    id: int
    token: str
    since: int | None = None  # the last seq seen of the member's own room (the inbox)
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: int
    room: str
    since: int | None = None
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: int
    room: str


@dataclass(frozen=True, slots=True)
class History:
    id: int
    room: str
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    room: str
    text: str
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class Edit:
    id: int
    room: str
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Delete:
    id: int
    room: str
    seq: int


@dataclass(frozen=True, slots=True)
class Ping:
    id: int


@dataclass(frozen=True, slots=True)
class Notifications:
    id: int
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class NotificationsRead:
    id: int
    up_to: int


@dataclass(frozen=True, slots=True)
class OffersEnable:
    id: int
    listing: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class OfferMake:
    id: int
    listing: str
    amount: int


@dataclass(frozen=True, slots=True)
class OfferRespond:
    id: int
    offer: str
    action: str  # one of OFFER_ACTIONS
    amount: int | None = None  # a counter's price; absent otherwise


@dataclass(frozen=True, slots=True)
class Likers:
    id: int
    listing: str
    before: int | None = None  # ms: likes strictly older than this
    limit: int = 50


@dataclass(frozen=True, slots=True)
class OfferToLikers:
    id: int
    listing: str
    amount: int
    to: tuple[str, ...] | None  # None: "all", the 20 most recent likers


@dataclass(frozen=True, slots=True)
class Offers:
    id: int
    listing: str | None = None
    state: str | None = None  # one of OFFER_STATES
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Read:
    id: int
    room: str  # an order room
    seq: int  # read up to this seq of the room


@dataclass(frozen=True, slots=True)
class Conversations:
    id: int
    role: str  # "sales" (as seller) or "purchases" (as buyer)
    before: int | None = None  # ms: orders created strictly before this (a page's last)
    limit: int = 20


@dataclass(frozen=True, slots=True)
class Typing:
    id: int
    room: str  # an order room


@dataclass(frozen=True, slots=True)
class Block:
    id: int
    user: str  # the member to block


@dataclass(frozen=True, slots=True)
class Unblock:
    id: int
    user: str


@dataclass(frozen=True, slots=True)
class Blocks:
    id: int


@dataclass(frozen=True, slots=True)
class Mute:
    id: int
    room: str


@dataclass(frozen=True, slots=True)
class Unmute:
    id: int
    room: str


@dataclass(frozen=True, slots=True)
class Mutes:
    id: int


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    room: str
    seq: int
    reason: str  # one of REPORT_REASONS
    note: str | None = None


Request = (
    Connect
    | Subscribe
    | Unsubscribe
    | History
    | Post
    | Edit
    | Delete
    | Ping
    | Notifications
    | NotificationsRead
    | OffersEnable
    | OfferMake
    | OfferRespond
    | Likers
    | OfferToLikers
    | Offers
    | Read
    | Conversations
    | Typing
    | Block
    | Unblock
    | Blocks
    | Mute
    | Unmute
    | Mutes
    | Report
)


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.bad_request, message)


def _int(obj: dict[str, Any], name: str, *, low: int = 0, high: int = MAX_INT) -> int:
    value = obj[name]
    if type(value) is not int:
        raise _bad(f"{name} must be an integer")
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}")
    return value


def _opt_int(obj: dict[str, Any], name: str, *, low: int = 0, high: int = MAX_INT) -> int | None:
    if obj.get(name) is None:
        return None
    return _int(obj, name, low=low, high=high)


def _str(obj: dict[str, Any], name: str, *, max_len: int) -> str:
    value = obj[name]
    if type(value) is not str:
        raise _bad(f"{name} must be a string")
    if not value:
        raise _bad(f"{name} must not be empty")
    if len(value) > max_len:
        raise _bad(f"{name} is longer than {max_len} characters")
    return value


def _text(obj: dict[str, Any], limits: Limits) -> str:
    value = obj["text"]
    if type(value) is not str:
        raise _bad("text must be a string")
    if not value.strip():
        raise _bad("text must not be blank")
    if "\0" in value:
        raise _bad("text must not contain a NUL character")
    if len(value) > limits.max_text_chars:
        raise ProtocolError(
            ErrorCode.too_large, f"text is longer than {limits.max_text_chars} characters"
        )
    return value


def _epoch(obj: dict[str, Any]) -> str | None:
    epoch = obj.get("epoch")
    if epoch is not None and (type(epoch) is not str or len(epoch) > 64):
        raise _bad("epoch must be a string of at most 64 characters")
    return epoch


def _id(obj: dict[str, Any], name: str) -> str:
    value = obj[name]
    if type(value) is not str or _ID.fullmatch(value) is None:
        raise _bad(f"{name} must be an id of [A-Za-z0-9_.-]{{1,64}}")
    return value


def _opt_id(obj: dict[str, Any], name: str) -> str | None:
    return None if obj.get(name) is None else _id(obj, name)


def _choice(obj: dict[str, Any], name: str, choices: frozenset[str]) -> str:
    value = obj[name]
    if type(value) is not str or value not in choices:
        raise _bad(f"{name} must be one of {', '.join(sorted(choices))}")
    return value


def _recipients(value: object) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if type(value) is not list or not value:
        raise _bad('to must be "all" or a non-empty list of user ids')
    if len(value) > MAX_OFFER_RECIPIENTS_ASKED:
        raise _bad(f"to names more than {MAX_OFFER_RECIPIENTS_ASKED} members")
    if any(type(v) is not str or _ID.fullmatch(v) is None for v in value):
        raise _bad("to must hold user ids of [A-Za-z0-9_.-]{1,64}")
    return tuple(value)


def _order_room(obj: dict[str, Any]) -> str:
    room = parse_room(obj["room"])
    if not room.startswith("order:"):
        raise _bad("room must be an order room, 'order:<id>'")
    return room


def parse_room(value: object) -> str:
    """A room a client may name: ``listing:<id>`` or ``order:<id>``."""
    if type(value) is not str:
        raise _bad("room must be a string")
    if _ROOM.fullmatch(value) is None:
        raise _bad("room must be 'listing:<id>' or 'order:<id>' with id of [A-Za-z0-9_.-]{1,64}")
    return value


# op -> (required fields, optional fields)
_FIELDS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "connect": (frozenset({"token"}), frozenset({"since", "epoch"})),
    "subscribe": (frozenset({"room"}), frozenset({"since", "epoch"})),
    "unsubscribe": (frozenset({"room"}), frozenset()),
    "history": (frozenset({"room"}), frozenset({"before", "limit"})),
    "post": (frozenset({"room", "text", "client_msg_id"}), frozenset()),
    "edit": (frozenset({"room", "seq", "text"}), frozenset()),
    "delete": (frozenset({"room", "seq"}), frozenset()),
    "ping": (frozenset(), frozenset()),
    "notifications": (frozenset(), frozenset({"before", "limit"})),
    "notifications_read": (frozenset({"up_to"}), frozenset()),
    "offers_enable": (frozenset({"listing", "enabled"}), frozenset()),
    "offer_make": (frozenset({"listing", "amount"}), frozenset()),
    "offer_respond": (frozenset({"offer", "action"}), frozenset({"amount"})),
    "likers": (frozenset({"listing"}), frozenset({"before", "limit"})),
    "offer_to_likers": (frozenset({"listing", "amount", "to"}), frozenset()),
    "offers": (frozenset(), frozenset({"listing", "state", "limit"})),
    "read": (frozenset({"room", "seq"}), frozenset()),
    "conversations": (frozenset({"role"}), frozenset({"before", "limit"})),
    "typing": (frozenset({"room"}), frozenset()),
    "block": (frozenset({"user"}), frozenset()),
    "unblock": (frozenset({"user"}), frozenset()),
    "blocks": (frozenset(), frozenset()),
    "mute": (frozenset({"room"}), frozenset()),
    "unmute": (frozenset({"room"}), frozenset()),
    "mutes": (frozenset(), frozenset()),
    "report": (frozenset({"room", "seq", "reason"}), frozenset({"note"})),
}
REPORT_REASONS: Final = frozenset(
    {"spam", "scam", "off_platform", "harassment", "inappropriate", "other"}
)
MAX_REPORT_NOTE: Final = 500
CONVERSATION_ROLES: Final = frozenset({"sales", "purchases"})
CONVERSATIONS_MAX_LIMIT: Final = 50
OPS: Final = frozenset(_FIELDS)


def request_id(obj: object) -> int | None:
    """The request id if the frame has a usable one, for echoing in an error."""
    if isinstance(obj, dict):
        value = obj.get("id")
        if type(value) is int and 0 <= value <= MAX_REQUEST_ID:
            return value
    return None


def parse_request(obj: object, limits: Limits) -> Request:
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.bad_frame, "a request must be an object")
    if "id" not in obj:
        raise ProtocolError(ErrorCode.missing_id, "a request must have an integer id")
    rid = obj["id"]
    if type(rid) is not int or not 0 <= rid <= MAX_REQUEST_ID:
        raise ProtocolError(ErrorCode.missing_id, f"id must be an integer in 0..{MAX_REQUEST_ID}")
    op = obj.get("op")
    if type(op) is not str:
        raise _bad("op must be a string")
    fields = _FIELDS.get(op)
    if fields is None:
        raise ProtocolError(ErrorCode.unknown_op, f"unknown op {op[:32]!r}")
    required, optional = fields
    present = obj.keys() - {"id", "op"}
    missing = required - present
    if missing:
        raise _bad(f"{op} needs {', '.join(sorted(missing))}")
    unknown = present - required - optional
    if unknown:
        raise _bad(f"{op} does not take {', '.join(sorted(str(k)[:32] for k in unknown))}")

    if op == "post":
        return Post(
            rid,
            parse_room(obj["room"]),
            _text(obj, limits),
            _str(obj, "client_msg_id", max_len=MAX_CLIENT_MSG_ID),
        )
    if op == "subscribe":
        return Subscribe(rid, parse_room(obj["room"]), _opt_int(obj, "since"), _epoch(obj))
    if op == "history":
        limit = _opt_int(obj, "limit", low=1, high=HISTORY_MAX_LIMIT)
        return History(rid, parse_room(obj["room"]), _opt_int(obj, "before", low=1), limit or 50)
    if op == "edit":
        return Edit(rid, parse_room(obj["room"]), _int(obj, "seq", low=1), _text(obj, limits))
    if op == "delete":
        return Delete(rid, parse_room(obj["room"]), _int(obj, "seq", low=1))
    if op == "unsubscribe":
        return Unsubscribe(rid, parse_room(obj["room"]))
    if op == "connect":
        token = _str(obj, "token", max_len=MAX_TOKEN)
        return Connect(rid, token, _opt_int(obj, "since"), _epoch(obj))
    if op == "notifications":
        limit = _opt_int(obj, "limit", low=1, high=HISTORY_MAX_LIMIT)
        return Notifications(rid, _opt_int(obj, "before", low=1), limit or 50)
    if op == "notifications_read":
        return NotificationsRead(rid, _int(obj, "up_to", low=0))
    if op.startswith(("offer", "likers")):
        return _parse_offer_op(op, rid, obj)
    if op == "read":
        return Read(rid, _order_room(obj), _int(obj, "seq", low=0))
    if op == "typing":
        return Typing(rid, _order_room(obj))
    if op == "conversations":
        limit = _opt_int(obj, "limit", low=1, high=CONVERSATIONS_MAX_LIMIT)
        role = _choice(obj, "role", CONVERSATION_ROLES)
        return Conversations(rid, role, _opt_int(obj, "before", low=1), limit or 20)
    if op in _MEMBER_CHOICES:
        return _parse_member_choice(op, rid, obj)
    if op == "report":
        note = None if obj.get("note") is None else _str(obj, "note", max_len=MAX_REPORT_NOTE)
        reason = _choice(obj, "reason", REPORT_REASONS)
        return Report(rid, parse_room(obj["room"]), _int(obj, "seq", low=1), reason, note)
    return Ping(rid)


_MEMBER_CHOICES: Final = frozenset({"block", "unblock", "blocks", "mute", "unmute", "mutes"})


def _parse_member_choice(op: str, rid: int, obj: dict[str, Any]) -> Request:
    """A member's own choices: whom they block, which rooms they mute."""
    if op == "block":
        return Block(rid, _id(obj, "user"))
    if op == "unblock":
        return Unblock(rid, _id(obj, "user"))
    if op == "mute":
        return Mute(rid, parse_room(obj["room"]))
    if op == "unmute":
        return Unmute(rid, parse_room(obj["room"]))
    return Blocks(rid) if op == "blocks" else Mutes(rid)


def _parse_offer_op(op: str, rid: int, obj: dict[str, Any]) -> Request:
    if op == "offer_make":
        return OfferMake(rid, _id(obj, "listing"), _int(obj, "amount", low=1, high=MAX_AMOUNT))
    if op == "offer_respond":
        action = _choice(obj, "action", OFFER_ACTIONS)
        amount = _opt_int(obj, "amount", low=1, high=MAX_AMOUNT)
        if (action == "counter") != (amount is not None):
            raise _bad("a counter needs an amount; accept, decline and withdraw take none")
        return OfferRespond(rid, _id(obj, "offer"), action, amount)
    if op == "offers_enable":
        if type(obj["enabled"]) is not bool:
            raise _bad("enabled must be true or false")
        return OffersEnable(rid, _id(obj, "listing"), obj["enabled"])
    if op == "likers":
        limit = _opt_int(obj, "limit", low=1, high=HISTORY_MAX_LIMIT)
        return Likers(rid, _id(obj, "listing"), _opt_int(obj, "before", low=1), limit or 50)
    if op == "offer_to_likers":
        amount = _int(obj, "amount", low=1, high=MAX_AMOUNT)
        return OfferToLikers(rid, _id(obj, "listing"), amount, _recipients(obj["to"]))
    limit = _opt_int(obj, "limit", low=1, high=HISTORY_MAX_LIMIT)
    state = None if obj.get("state") is None else _choice(obj, "state", OFFER_STATES)
    return Offers(rid, _opt_id(obj, "listing"), state, limit or 50)


def reply(
    rid: int | None, *, result: dict[str, Any] | None = None, error: ParleyError | None = None
) -> dict[str, Any]:
    """The reply envelope: ``{"id", "result"}`` or ``{"id", "error": {code, message}}``."""
    if error is not None:
        return {"id": rid, "error": error.to_wire()}
    return {"id": rid, "result": result if result is not None else {}}
