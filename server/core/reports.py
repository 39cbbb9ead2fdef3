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

The moderators act on an item (``RESOLVE_ACTIONS``) or on any message directly
(remove it). A removal makes the message a tombstone for everyone, its words
erased as a member's delete erases them, and tells its author why: a statement
of reasons, one text or one per language, given to the author in theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import MAX_REPORT_NOTE
from parley.protocol.messages import REPORT_REASONS as PROTOCOL_REASONS
from parley.server.core.model import Entry, UserId
from parley.server.core.notices import pick_locale

# The marketplace backend's event feed (``GET /v1/events``). The review queue is
# stored beside it, so that an item and its ``report.created`` are one write.
EVENTS_ROOM: Final = "backend:events"
REPORT_REASONS: Final = PROTOCOL_REASONS  # validated with the request
MAX_NOTE: Final = MAX_REPORT_NOTE  # characters of a reporter's note
MAX_NOTES: Final = 20  # notes kept per queue item: the first ones
REPORT_STATES: Final = frozenset({"open", "resolved"})
RESOLVE_ACTIONS: Final = frozenset({"dismiss", "remove_message", "restrict_member"})
# Grounds of a removal: a report's reasons, the law, the marketplace's terms.
REMOVAL_REASONS: Final = REPORT_REASONS | {"illegal", "terms"}
MAX_STATEMENT: Final = 2000  # characters of a statement of reasons, per language
MAX_STATEMENT_LOCALES: Final = 10
ANY_LOCALE: Final = "*"  # the key of a statement given as one text for every language
_LOCALE_RE: Final = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}")


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


ERASED_REPORTER: Final = "erased:"  # a reporter erased: ":" is in no member id


def erased_reporter(token: str) -> str:
    """The placeholder standing for an erased reporter in one report: ``token``
    (random) keeps it unique there and unlinkable to their other reports."""
    return ERASED_REPORTER + token


def own_report(report_id: str, room: str, seq: int, flag: dict[str, Any]) -> dict[str, Any]:
    """A report as its reporter's export shows it: their reason, note and when,
    and the message reported; nothing of the other reporters."""
    return {"report_id": report_id, "room": room, "seq": seq, "reason": flag["reason"],
            "note": flag.get("note") or None, "ts": flag["ts"]}  # fmt: skip


def without_note(notes: list[dict[str, Any]], flag: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's ``notes`` with the one ``flag`` gave made note-less (reason and
    time stay, for the record)."""
    mine = {"reason": flag["reason"], "note": flag.get("note"), "ts": flag["ts"]}
    out, found = [], False
    for note in notes:
        if not found and note == mine:
            found = True
            note = {**note, "note": None}
        out.append(note)
    return out


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


def check_statement(value: object) -> dict[str, str]:
    """A statement of reasons as given: one text, or ``{locale: text}``; by locale."""
    if isinstance(value, str):
        texts = {ANY_LOCALE: value}
    elif isinstance(value, dict) and 1 <= len(value) <= MAX_STATEMENT_LOCALES:
        texts = value
        for locale in texts:
            if not isinstance(locale, str) or _LOCALE_RE.fullmatch(locale) is None:
                raise _bad("statement: each key must be a locale such as fr-CA or en")
    else:
        raise _bad(
            "statement must be a text, or an object of 1 to "
            f"{MAX_STATEMENT_LOCALES} locales to texts"
        )
    for text in texts.values():
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_STATEMENT:
            raise _bad(f"statement: each text must have 1 to {MAX_STATEMENT} characters")
    return dict(texts)


def statement_in(statement: dict[str, str], locale: str | None) -> str:
    """The statement in the member's language: theirs, else English, else any."""
    wanted = pick_locale(locale)
    by_language = {pick_locale(key): text for key, text in statement.items() if key != ANY_LOCALE}
    for key in (wanted, "en"):
        if key in by_language:
            return by_language[key]
    return statement.get(ANY_LOCALE) or next(iter(statement.values()))


def removal_notice(entry: Entry, reason: str, statement: str) -> dict[str, Any]:
    """The ``moderation`` notification that tells a message's author it was removed."""
    return {
        "kind": "moderation",
        "action": "message_removed",
        "room": entry.room,
        "seq": entry.seq,
        "reason": reason,
        "statement": statement,
    }


def should_hold(target: Entry, reporters: int, hold_after: int) -> bool:
    """Whether a public comment is now hidden pending review (``hold_after``: 0 is off).

    Order rooms are never held: the order must stay completable, and their two
    parties can block and report. A comment released once is not held again by
    the same key (the caller's), even if more members report it.
    """
    return (
        hold_after > 0
        and reporters >= hold_after
        and target.room.startswith("listing:")
        and not target.held
        and not target.deleted
    )


def check_may_remove(target: Entry | None) -> Entry:
    """A message the moderators may remove: a member's comment, there and not deleted
    by its author. One already removed is returned: removing again is a retry."""
    if target is None or target.kind != "comment" or target.author is None:
        raise ParleyError(ErrorCode.not_found, "no member's message there")
    if target.deleted and not target.removed:
        raise ParleyError(ErrorCode.conflict, "its author deleted it already: nothing to remove")
    return target


def _bad(message: str) -> ParleyError:
    return ParleyError(ErrorCode.bad_request, message)
