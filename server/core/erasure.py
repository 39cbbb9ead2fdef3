"""A member's erasure, as rules: what is erased, what stands in for them, what is kept.

The store's steps are driven by ``server.member_erasure``; here is what each
step decides, with no I/O:

- every comment or order-room message the member wrote and did not delete
  gets a ``delete`` entry with no author (``erase_draft``): the store erases its
  words, and its edits' words, exactly as a member's own delete does; the room's
  ``seq`` stays gap-free, the tombstone stays;
- every entry the member wrote shows ``ERASED_NAME`` for a name;
- the notifications their messages caused in other members' inboxes (a
  mention, an order message: ``notice_keys``) are withdrawn, as when a member
  deletes a message (R2): their excerpts and the rewrites of them are erased;
- their record keeps its id with ``ERASED_NAME`` and no e-mail, and their
  username is freed, so ``@name`` no longer finds them;
- their inbox, read marks, likes, blocks and mutes are dropped, and so are
  their push items not yet acked by every gateway;
- in the reports they filed, an ``erased:<random>`` placeholder stands for them
  and their note loses its words; the report's reason stays counted, for the
  moderators' record; orders and negotiations hold
  ids, amounts and times only (no words: R2), and are kept for accounting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from parley.server.core.model import Draft, Entry, UserId

ERASED_NAME: Final = "former member"  # no username can hold a space: no @mention finds it


def erase_key(seq: int) -> str:
    """The idempotency key of the erasure of message ``seq``: two hubs, or a run
    after a crash, store its ``delete`` once."""
    return f"erase:{seq}"


def words_to_erase(entries: Iterable[Entry]) -> list[int]:
    """The seqs of the member's messages whose words are still stored."""
    return [e.seq for e in entries if e.kind == "comment" and not e.deleted]


def words_ever(entries: Iterable[Entry]) -> list[int]:
    """The seqs of the member's messages, deleted or not: each may have been notified."""
    return [e.seq for e in entries if e.kind == "comment"]


def erase_draft(seq: int, now_ms: int) -> Draft:
    return Draft("delete", "", now_ms, None, client_msg_id=erase_key(seq), target=seq)


def notice_keys(room: str, seq: int) -> tuple[str, ...]:
    """The idempotency keys of the notifications message ``seq`` of ``room`` may have
    caused, in its recipients' inboxes (``server.ops.rooms``): an edit's new
    mentions are keyed by the message it edits."""
    return (f"mention:{room}:{seq}", f"order_message:{room}:{seq}")


def mentioned(entries: Iterable[Entry]) -> dict[int, set[UserId]]:
    """Per message (the seq an edit targets), the members its versions mentioned."""
    out: dict[int, set[UserId]] = {}
    for entry in entries:
        seq = entry.target if entry.kind == "edit" else entry.seq
        if entry.kind in ("comment", "edit") and seq is not None:
            out.setdefault(seq, set()).update(m.user_id for m in entry.mentions)
    return out
