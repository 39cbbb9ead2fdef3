"""Who a message's @mentions notify (R4): resolved, deduplicated, bounded.

``find_mentions`` says where a text names someone; this decides who that is
and who hears of it: members only (unknown names stay text), never the author,
in an order room only its buyer and seller (a mention must not show a private
conversation to anyone else), each member once per message, and at most
``MAX_NOTIFIED`` members; names past the limit stay text too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from parley.server.core.mentions import MAX_NOTIFIED, MentionSpan, distinct_keys
from parley.server.core.model import Mention, User, UserId

# Distinct names looked up per message: enough to find MAX_NOTIFIED members
# among unknown names, and a bound on what one hostile message costs.
MAX_LOOKUPS = 5 * MAX_NOTIFIED


@dataclass(frozen=True, slots=True)
class Resolved:
    mentions: tuple[Mention, ...]  # every span naming a member kept, in text order
    members: tuple[UserId, ...]  # those members once each, first mention first
    over_limit: int  # further members named past MAX_NOTIFIED: left as text


def lookup_keys(spans: list[MentionSpan]) -> list[str]:
    """The names to look up for ``spans``, bounded."""
    return distinct_keys(spans)[:MAX_LOOKUPS]


def resolve_mentions(
    spans: list[MentionSpan],
    found: Mapping[str, User],
    author_id: str,
    may_read: Callable[[str], bool] | None = None,
) -> Resolved:
    """Keep the spans that name a member who may be told; see the module's rules."""
    kept: dict[str, UserId] = {}  # key -> member, in first-mention order
    over = 0
    for key in lookup_keys(spans):
        user = found.get(key)
        if user is None or user.id == author_id or user.id in kept.values():
            continue
        if may_read is not None and not may_read(user.id):
            continue
        if len(kept) == MAX_NOTIFIED:
            over += 1
            continue
        kept[key] = user.id
    mentions = tuple(
        Mention(kept[span.key], found[span.key].name, span.start, span.end)
        for span in spans
        if span.key in kept
    )
    return Resolved(mentions, tuple(kept.values()), over)


def newly_mentioned(before: tuple[Mention, ...], after: Resolved) -> list[UserId]:
    """Members an edit mentions that the message did not mention before."""
    known = {m.user_id for m in before}
    return [member for member in after.members if member not in known]
