"""Restrictions the moderators put on a member: read-only, or suspended.

The rules, as the functions below apply them:

- ``read_only``: the member still connects, reads, watches, marks read,
  deletes their own comments, blocks and mutes; every op that says something
  to others (``RESTRICTED_OPS``: post, edit, offers, report, typing) is refused
  with ``restricted``, whose ``details`` say which restriction and until when.
- ``suspended``: every connection of the member is closed (4010) and a new
  ``connect`` is refused (``restricted``, then 4010) until it ends.
- A restriction ends at ``until`` (ms), or when lifted; without ``until`` it
  lasts until lifted. One restriction per member: a new one replaces it.

Each hub keeps the active restrictions in memory (``RestrictionBook``), loaded
at start, updated by the broadcast every change makes and reloaded after the
fan-out may have missed one: the checks on the post path read no store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import (
    Edit,
    OfferMake,
    OfferRespond,
    OffersEnable,
    OfferToLikers,
    Post,
    Report,
    Typing,
)

RESTRICTION_KINDS: Final = frozenset({"read_only", "suspended"})
RESTRICTED_OPS: Final = (
    Post,
    Edit,
    OfferMake,
    OfferRespond,
    OfferToLikers,
    OffersEnable,
    Report,
    Typing,
)
# A room no member can name: every hub follows it to hear restrictions change.
RESTRICTIONS_ROOM: Final = "moderation:restrictions"
MAX_REASON: Final = 500


@dataclass(frozen=True, slots=True)
class Restriction:
    user_id: str
    kind: str  # one of RESTRICTION_KINDS
    until: int | None  # ms; None: until lifted
    reason: str  # what the member is told
    ts: int  # when it was put

    def active_at(self, now_ms: int) -> bool:
        return self.until is None or now_ms < self.until


def check_restriction(
    kind: object, until: object, reason: object, now_ms: int
) -> tuple[str, int | None, str]:
    """A restriction as the backend gives it, or ``bad_request``."""
    if not isinstance(kind, str) or kind not in RESTRICTION_KINDS:
        raise _bad(f"kind must be one of {', '.join(sorted(RESTRICTION_KINDS))}")
    if until is not None and (type(until) is not int or until <= now_ms or until > 2**53):
        raise _bad("until must be a time in the future, in ms since the epoch, or null")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise _bad(f"reason must be a text of 1 to {MAX_REASON} characters")
    return str(kind), until, reason


def restriction_wire(restriction: Restriction) -> dict[str, Any]:
    return {
        "user_id": restriction.user_id,
        "kind": restriction.kind,
        "until": restriction.until,
        "reason": restriction.reason,
        "since": restriction.ts,
    }


def from_wire(data: dict[str, Any]) -> Restriction:
    return Restriction(data["user_id"], data["kind"], data["until"], data["reason"], data["since"])


def restricted(restriction: Restriction, message: str) -> ParleyError:
    return ParleyError(
        ErrorCode.restricted,
        message,
        details={"kind": restriction.kind, "until": restriction.until},
    )


def restriction_notice(restriction: Restriction) -> dict[str, Any]:
    """The ``moderation`` notification that tells a member of their restriction."""
    return {
        "kind": "moderation",
        "action": "member_restricted",
        "restriction": restriction.kind,
        "until": restriction.until,
        "statement": restriction.reason,
    }


class RestrictionBook:
    """The active restrictions, by member, as one hub knows them."""

    def __init__(self) -> None:
        self.by_user: dict[str, Restriction] = {}

    def replace_all(self, restrictions: list[Restriction]) -> list[str]:
        """Load every restriction; return the members suspended now."""
        self.by_user.clear()  # in place: the hub holds this dict
        self.by_user.update((r.user_id, r) for r in restrictions)
        return [r.user_id for r in restrictions if r.kind == "suspended"]

    def heard(self, event: dict[str, Any]) -> str | None:
        """Apply one broadcast change; return the member to disconnect, if suspended."""
        user_id = event.get("user_id")
        if not isinstance(user_id, str):
            return None
        data = event.get("restriction")
        if not isinstance(data, dict):
            self.by_user.pop(user_id, None)
            return None
        restriction = from_wire(data)
        self.by_user[user_id] = restriction
        return user_id if restriction.kind == "suspended" else None

    def active(self, user_id: str, now_ms: int) -> Restriction | None:
        restriction = self.by_user.get(user_id)
        if restriction is None or not restriction.active_at(now_ms):
            return None
        return restriction

    def check_write(self, user_id: str, now_ms: int) -> None:
        restriction = self.active(user_id, now_ms)
        if restriction is not None:
            raise restricted(restriction, "this member may not write now")

    def check_connect(self, user_id: str, now_ms: int) -> None:
        restriction = self.active(user_id, now_ms)
        if restriction is not None and restriction.kind == "suspended":
            raise restricted(restriction, "this member is suspended")


def _bad(message: str) -> ParleyError:
    return ParleyError(ErrorCode.bad_request, message)
