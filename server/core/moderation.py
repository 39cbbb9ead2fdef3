"""A member's own choices about others: blocks and mutes, and what they silence.

The rules, as the functions below apply them:

- A member blocks another member by id (never themselves), up to ``max_blocks``
  members; blocking again changes nothing, and unblocking someone not blocked is
  not an error. The same holds for muting rooms, up to ``max_mutes``.
- A block silences every notification whose author is the blocked member, to
  the blocker: their @mentions, their messages in an order room, their answers
  to a negotiation. A mute silences the notifications a room's messages cause
  (``MUTABLE_KINDS``), never an offer's nor the marketplace's own.
- A block forbids new negotiations between the two, in either direction: the
  refusal (``blocked``) says that an offer between these two members is not
  possible, never which of them blocked the other.
- Nothing is silenced that a member must see to finish an order: the order
  room's messages still flow both ways, and the backend's status messages and
  the moderators' notices still notify.
"""

from __future__ import annotations

from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError

# Notification kinds a room's messages cause: what muting the room silences.
MUTABLE_KINDS: Final = frozenset({"mention", "order_message"})
# Notification kinds nobody silences: what the marketplace itself says to a member.
UNSILENCED_KINDS: Final = frozenset({"moderation", "order_opened", "order_status"})


def check_may_block(user_id: str, other: str) -> None:
    if user_id == other:
        raise ParleyError(ErrorCode.bad_request, "a member cannot block themselves")


def check_room_for_list(count: int, limit: int, what: str) -> None:
    """Refuse an addition to a member's list already holding ``limit`` items."""
    if count >= limit:
        raise ParleyError(
            ErrorCode.limit_reached,
            f"{what} is full: remove one first",
            details={"max": limit},
        )


def notice_author(payload: dict[str, Any]) -> str | None:
    """The member a notification is about the doing of, if any."""
    author = payload.get("author")
    if isinstance(author, dict):
        author_id = author.get("id")
        if isinstance(author_id, str):
            return author_id
    return None


def is_silenced(payload: dict[str, Any], *, author_blocked: bool, room_muted: bool) -> bool:
    """Whether a notification is dropped by its recipient's blocks and mutes."""
    kind = payload.get("kind")
    if kind in UNSILENCED_KINDS:
        return False
    if author_blocked:
        return True
    return room_muted and kind in MUTABLE_KINDS


def check_offer_not_blocked(blocked: bool) -> None:
    """R5 and R6 between two members one of whom blocked the other: refused, without
    saying who blocked whom."""
    if blocked:
        raise ParleyError(ErrorCode.blocked, "an offer between you and this member is not possible")
