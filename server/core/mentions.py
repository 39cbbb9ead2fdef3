"""@mentions in comments (R4): what a username may be, its case-insensitive identity, and
where a text mentions one.

This module only reads text. Turning keys into members, leaving out the author and the
unknown names, and stopping at ``MAX_NOTIFIED`` belong to whoever sends the notifications.

The rules, as ``find_mentions`` applies them:

- ``@`` starts a mention only at the start of a word: at the start of the text or after
  whitespace, an opening bracket or quote, or punctuation such as ``, ; ! ? * >``. After a
  letter, a digit, an accent or one of ``_ . + - / : = % & ~ @`` it is the middle of an
  e-mail address, a URL or a handle (``jean@gmail.com``, ``medium.com/@alice``, ``@@x``).
- The name is the longest username that follows; a ``.`` or ``-`` it cannot end with is the
  sentence's punctuation (``@marie.`` mentions ``marie``).
- A name followed by ``@`` is the local part of an e-mail address, not a mention; an ``@``
  inside a URL (``https://…``, ``www.…``, ``mailto:…``) is part of the URL.
- A name longer than ``MAX_USERNAME`` is no one's: it is not cut down to a shorter one.
- An all-digit name (``@123``) is a mention like any other: it names no member, so it
  notifies no one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from parley.server.core.lookalikes import drop_invisible, skeleton

MAX_USERNAME: Final = 64
MAX_NOTIFIED: Final = 10  # members notified per message (R4)

# Accents sent as separate combining marks ("zoe" + U+0301 for "zoé", as some keyboards and
# copy-pastes do) belong to the letter before them, so the name is not cut short and an
# address like "josé@…" is still an address. These are the blocks that decomposed Latin,
# Greek and Cyrillic letters use.
_MARKS: Final = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# A run of letters, digits and '_' (what \w is in Python 3: str.isalnum() or '_').
_RUN: Final = rf"\w[\w{_MARKS}]*"
# Runs joined by single dots or hyphens: "jean.tremblay", "Josée-Anne", not "a..b".
_NAME: Final = rf"{_RUN}(?:[.\-]{_RUN})*"

_USERNAME_RE: Final = re.compile(_NAME)
# One scan finds both URLs and mentions: a URL is consumed whole, so an '@' inside it is
# never looked at as a mention. The scheme is bounded so that a text like "a.a.a.a…" is
# not scanned again from every dot. The atomic group (?>…) keeps "jean" in
# "@jean@gmail.com" from being retried as "jea", which no '@' follows.
_URL_OR_MENTION_RE: Final = re.compile(
    rf"""
    (?P<url> (?i: \b (?: [a-z][a-z0-9+.\-]{{0,31}}:// | www\. | mailto: ) ) \S+ )
    | (?<! [\w{_MARKS}.+\-/:=%&~@] ) @ (?P<name> (?> {_NAME} ) ) (?! @ )
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class MentionSpan:
    name: str  # as written in the text, without the '@'
    key: str  # username_key(name)
    start: int  # index of the '@' in the text
    end: int  # index just after the name (exclusive)


def _length(name: str) -> int:
    """Characters as a reader counts them: a letter typed with a separate accent is one."""
    return len(name) if name.isascii() else len(unicodedata.normalize("NFC", name))


def is_valid_username(name: str) -> bool:
    """1 to ``MAX_USERNAME`` letters, digits and ``_``, with single ``.`` or ``-`` inside."""
    return _USERNAME_RE.fullmatch(name) is not None and _length(name) <= MAX_USERNAME


def username_key(name: str) -> str:
    """The identity of a username: ``ZOÉ``, ``zoé``, ``zoe\\u0301``, ``zoé`` in fullwidth
    letters, with a zero-width space or a trailing space, or with a Cyrillic o (U+043E) are
    one member.

    Case-folded, trimmed and without invisible characters, then compared by the confusable
    skeleton of Unicode TR 39 (``lookalikes.skeleton``), case-folded again since some
    prototypes are capitals (``0`` looks like ``O``), and composed (NFC) to be read.
    """
    folded = unicodedata.normalize("NFKC", drop_invisible(name)).strip().casefold()
    return unicodedata.normalize("NFC", skeleton(folded).casefold())


def find_mentions(text: str) -> list[MentionSpan]:
    """Every mention in ``text``, in text order, repeats included; indices are into ``text``."""
    if "@" not in text:  # most comments: no scan at all
        return []
    spans: list[MentionSpan] = []
    for match in _URL_OR_MENTION_RE.finditer(text):
        name = match["name"]
        if name is None or _length(name) > MAX_USERNAME:
            continue
        spans.append(MentionSpan(name, username_key(name), match.start(), match.end()))
    return spans


def distinct_keys(spans: list[MentionSpan]) -> list[str]:
    """The keys of ``spans`` once each, in the order they were first written."""
    return list(dict.fromkeys(span.key for span in spans))
