"""Reports of members' messages, and the review queue they make (docs/moderation.md).

The rules, as the functions below apply them:

- A member reports a message they may read (the room's access rules, as
  ``history``), written by another member: not their own, not a system message,
  not one already deleted or removed.
- The reasons are ``REPORT_REASONS``; a note is at most ``MAX_NOTE`` characters.
- One report per member per message: the repeat answers the first.
- Reports of one message make one item of the review queue: a snapshot of the
  message as it was when first reported (text, author, room, seq), the number of
  distinct reporters and the count of each reason, a few of their notes. Who
  reported is kept for the moderators only; the reported member never learns it.
- A new report of a message whose item was dismissed opens the item again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import MAX_REPORT_NOTE
from parley.protocol.messages import REPORT_REASONS as PROTOCOL_REASONS
from parley.server.core.model import Entry, UserId

# The marketplace backend's event feed (``GET /v1/events``). The review queue is
# stored beside it, so that an item and its ``report.created`` are one write.
EVENTS_ROOM: Final = "backend:events"
REPORT_REASONS: Final = PROTOCOL_REASONS  # validated with the request
MAX_NOTE: Final = MAX_REPORT_NOTE  # characters of a reporter's note
MAX_NOTES: Final = 20  # notes kept per queue item: the first ones
REPORT_STATES: Final = frozenset({"open", "resolved"})


@dataclass(frozen=True, slots=True)
class Flag:
    """One member's report of one message."""

    reporter: UserId
    reason: str
    note: str | None
    ts: int


@dataclass(frozen=True, slots=True)
class Report:
    """One item of the review queue: every report of one message."""

    id: str
    number: int  # its place in the queue, increasing: the page cursor
    room: str
    seq: int
    author_id: UserId
    snapshot: dict[str, Any]  # the message as first reported: text, author, room, seq, ts
    state: str  # one of REPORT_STATES
    created_ts: int
    updated_ts: int
    reporters: int
    reasons: dict[str, int]
    notes: list[dict[str, Any]]  # [{reason, note, ts}], at most MAX_NOTES, no reporter
    resolution: dict[str, Any] | None = None  # {action, statement, ts} once resolved
    context: list[dict[str, Any]] = field(default_factory=list)  # filled when served


@dataclass(frozen=True, slots=True)
class Filed:
    """What filing a flag did."""

    report_id: str
    duplicate: bool  # the member had reported this message already
    created: bool  # the message's first report: a new queue item
    reporters: int  # distinct reporters of the message now
    reason: str  # the member's reason (the first one, for a duplicate)


def check_may_report(user_id: str, target: Entry | None) -> Entry:
    """The message ``user_id`` may report, or a refusal with a stable code."""
    if target is None or target.kind != "comment" or target.deleted or target.author is None:
        raise ParleyError(ErrorCode.not_found, "no member's message to report there")
    if target.author.id == user_id:
        raise ParleyError(ErrorCode.forbidden, "members report other members' messages")
    return target


def snapshot_of(entry: Entry) -> dict[str, Any]:
    """The reported message as the moderators will see it, whatever happens to it later."""
    assert entry.author is not None
    return {
        "room": entry.room,
        "seq": entry.seq,
        "text": entry.text,
        "ts": entry.ts,
        "author": {"id": entry.author.id, "name": entry.author.name},
    }


def report_event(report_id: str, entry: Entry, flag: Flag) -> dict[str, Any]:
    """``report.created``, for the backend's event feed: ids, never words."""
    assert entry.author is not None
    return {
        "type": "report.created",
        "report_id": report_id,
        "room": entry.room,
        "seq": entry.seq,
        "author_id": entry.author.id,
        "reason": flag.reason,
        "reported_at": flag.ts,
    }


def report_wire(report: Report) -> dict[str, Any]:
    """A queue item as the internal API shows it."""
    return {
        "id": report.id,
        "state": report.state,
        "room": report.room,
        "seq": report.seq,
        "message": report.snapshot,
        "context": report.context,
        "reporters": report.reporters,
        "reasons": report.reasons,
        "notes": report.notes,
        "created_at": report.created_ts,
        "updated_at": report.updated_ts,
        "resolution": report.resolution,
    }
