"""Contact details in members' texts (R8): e-mail addresses, phone numbers and social-media
accounts, in French and English, found in one read of the text and masked in place.

This module only reads text. What a room does with the findings (mask, refuse, let through)
and telling the author why belong to ``contact_policy``.

Each kind has its own detector, with its rules at its top:

- ``contact_email``: ``name@domain.tld`` and its disguises (``[at]``, ``arobase``, ``dot``,
  letters spaced out), up to the last label that can end an address.
- ``contact_phone``: digit groups and number words read as one number, which
  ``phonenumbers`` and the words around it decide; what is never a phone.
- ``contact_social``: links to the networks, and the handle next to a network's name.

The rules, as ``find_contact_details`` applies them:

- Cost. Most comments hold nothing, so a cheap look comes first: an ``@``, seven digits
  close together, a network's or a mail provider's name, ``at`` with ``dot``/``point`` or a
  bracket, a number word among two other numbers, a ``/``. Without one, nothing else is read;
  with one, only the readings it calls for run.
- Members. An ``@name`` or a handle whose ``username_key`` is in ``members`` is never
  masked: a mention is R4's business. Any other ``@name`` far from a network stays text.
- Findings are sorted and never overlap (overlapping ones merge, with the longer one's
  kind); masking replaces every character of a finding but line breaks by ``MASK_CHAR``, so
  lengths and every other index hold. After masking, the text is read again (at most three
  times in all) until nothing new is found, so the guard finds nothing in its own output.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from parley.server.core.contact_email import PROVIDERS, find_emails, find_mail_names
from parley.server.core.contact_phone import (
    COMPOUND_WORDS,
    GAP_CHARS,
    NUMBER_WORDS,
    find_phones,
)
from parley.server.core.contact_reading import read
from parley.server.core.contact_social import NETWORK_FORMS, NETWORKS, find_socials
from parley.server.core.mentions import find_mentions

ContactKind = Literal["email", "phone", "social"]

MASK_CHAR: Final = "•"
_ROUNDS: Final = 3  # reads of a text: the second one sees what masking the first revealed


@dataclass(frozen=True, slots=True)
class Finding:
    kind: ContactKind
    start: int  # code-point index into the text
    end: int  # exclusive


# --- The cheap look ----------------------------------------------------------------------

# The text as UTF-8 with ASCII letters lower-cased and everything but ASCII letters and digits
# turned into spaces: its split() gives the words of the cheap look ("zéro" gives "z", "ro").
_ALNUM: Final = b"0123456789abcdefghijklmnopqrstuvwxyz"
_WORD_BYTES: Final = bytes(b if b in _ALNUM else 32 for b in range(256))


def _bytes_words(words: Collection[str]) -> frozenset[bytes]:
    return frozenset(
        piece for word in words for piece in word.encode().translate(_WORD_BYTES).split()
    )


_SPELLED_WORDS: Final = frozenset({*NUMBER_WORDS, *COMPOUND_WORDS})
_NUMBER_BYTES: Final = _bytes_words(_SPELLED_WORDS)


def _first_word(word: str) -> bytes:
    return word.encode().translate(_WORD_BYTES).split()[0]


# Number words by the first word the cheap look sees of them ("zéro" by "z").
_NUMBER_BY_BYTES: Final = {
    first: frozenset(w for w in _SPELLED_WORDS if _first_word(w) == first)
    for first in map(_first_word, _SPELLED_WORDS)
}
# A network's name as a regular expression, by the word the cheap look sees of it.
_NETWORK_BY_BYTES: Final = {
    **{name.encode(): name for name in NETWORKS},
    **{form.split()[0].encode(): form.replace(" ", "[ \t]?") for form in NETWORK_FORMS},
}
_ALL_NETWORKS: Final = frozenset(_NETWORK_BY_BYTES.values())
# Names a member may spell out one letter at a time ("s n a p"): the reading joins them
# (an address spelled out is read by the e-mail reading itself).
SPELLED_NAMES: Final = frozenset(NETWORKS)
# Words that the site of a link to a network starts with (and "m.me/", "t.me/", "x.com/"),
# as the cheap look sees them.
_LINK_BYTES: Final = frozenset(
    b"instagram instagr facebook fb messenger tiktok snapchat wa whatsapp telegram signal "
    b"discord discordapp twitter threads linktr".split()
)
_PROVIDER_BYTES: Final = _bytes_words(PROVIDERS) | {b"arobase", b"arobas", b"arrobase", b"arrobas"}
_DOT_BYTES: Final = frozenset({b"dot", b"point"})
_LOOK_BYTES: Final = (
    _NUMBER_BYTES | _NETWORK_BY_BYTES.keys() | _LINK_BYTES | _PROVIDER_BYTES | {b"at"}
)

# Seven real digits close together: the least a phone has when it has fewer than three
# number words in a row (look-alike letters come only in numbers of ten digits or more, at
# most three; one word next to one group never makes the number's groups). Starting on a
# digit keeps the scan fast.
_DIGIT_RUN_RE: Final = re.compile(rf"[0-9](?:[{GAP_CHARS}OolI]{{0,6}}[0-9]){{6}}")
# Three groups of a number with a few other characters between them: "514 then 555 then 0187".
_GROUPS_RE: Final = re.compile(rb"[0-9]{3}[^0-9]{1,16}[0-9]{3}[^0-9]{1,16}[0-9]{4}")
_NOT_DIGITS: Final = bytes(b for b in range(256) if not 48 <= b <= 57)


class _Gates(NamedTuple):
    """What the cheap look saw, so that only the readings that can find something run."""

    at_sign: bool  # an "@": addresses, @handles
    mail_words: bool  # "at", "arobase", "(at)", a provider's name
    phone: bool  # seven digits close together, or a number word among numbers
    spelled: frozenset[str]  # the number words there: phones may be spelled out
    networks: frozenset[str]  # the networks named, as regular expressions
    links: bool  # a link to a network may be there


_NO_WORDS: Final[frozenset[str]] = frozenset()
_NOTHING: Final = _Gates(False, False, False, _NO_WORDS, _NO_WORDS, False)
# Every reading on: what the cheap look must never find less than (the tests check it).
_EVERYTHING: Final = _Gates(True, True, True, _SPELLED_WORDS, _ALL_NETWORKS, True)


def _gates(text: str) -> _Gates:
    """What could be in ``text``, from a few scans of it that all run in C."""
    low = text.encode().lower()
    words = low.translate(_WORD_BYTES).split()
    hits = _LOOK_BYTES.intersection(words)
    numbers = not hits.isdisjoint(_NUMBER_BYTES)
    digits = len(low.translate(None, _NOT_DIGITS))  # a phone has seven or number words
    phone = (
        (digits >= 7 and _DIGIT_RUN_RE.search(text) is not None)
        or (numbers and _three_numbers_in_a_row(words))
        or (digits >= 10 and _GROUPS_RE.search(low) is not None)
    )
    at_sign = b"@" in low
    if not (hits or phone or at_sign or b"/" in low):
        return _NOTHING
    links = b"/" in low and (not hits.isdisjoint(_LINK_BYTES) or b".me/" in low or b"x.com/" in low)
    mail_words = not hits.isdisjoint(_PROVIDER_BYTES) or (
        b"at" in hits and (not _DOT_BYTES.isdisjoint(words) or _has_bracket(text))
    )
    networks = frozenset(_NETWORK_BY_BYTES[w] for w in hits if w in _NETWORK_BY_BYTES)
    spelled = _NO_WORDS.union(*(_NUMBER_BY_BYTES.get(w, ()) for w in hits)) if phone else _NO_WORDS
    gates = _Gates(at_sign, mail_words, phone, spelled, networks, links)
    return _NOTHING if gates == _NOTHING else gates  # a "/" alone: the one that callers test


def _three_numbers_in_a_row(words: list[bytes]) -> bool:
    """Three numbers or number words in a row."""
    run = 0
    for word in words:
        if word in _NUMBER_BYTES or not word.isalpha():
            run += 1
            if run == 3:
                return True
        else:
            run = 0
    return False


def _has_bracket(text: str) -> bool:
    return "[" in text or "(" in text or "{" in text or "<" in text


# --- The reading -------------------------------------------------------------------------


def find_contact_details(
    text: str, *, region: str = "CA", members: Collection[str] = ()
) -> list[Finding]:
    """The contact details in ``text``, sorted and not overlapping; see the module's rules.

    ``region`` is the phone region numbers without ``+`` belong to; ``members`` holds the
    ``username_key`` of the members an ``@name`` may name: those are never masked.
    """
    reading = read(text, SPELLED_NAMES)
    gates = _gates(text if reading is None else reading.text)
    if gates is _NOTHING:
        return []
    region = region.upper()
    protected = _member_spans(text, members)
    findings: list[Finding] = []
    work = text
    for _ in range(_ROUNDS):
        found = []
        seen = _detect(work if reading is None else reading.text, region, members, gates)
        for finding in seen:
            if reading is not None:
                finding = Finding(finding.kind, *reading.span(finding.start, finding.end))
            if not _inside(finding, protected):
                found.append(finding)
        if not found:
            break
        findings = _merge([*findings, *found])
        work = mask_contact_details(text, findings)
        reading = read(work, SPELLED_NAMES)
        gates = _gates(work if reading is None else reading.text)
        if gates is _NOTHING:
            break
    return findings


def mask_contact_details(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with every character of ``findings`` but line breaks replaced by MASK_CHAR."""
    if not findings:
        return text
    pieces: list[str] = []
    done = 0
    for finding in sorted(findings, key=lambda f: f.start):
        start, end = max(finding.start, done), min(finding.end, len(text))
        if start >= end:
            continue
        pieces.append(text[done:start])
        pieces.append(_LINE_BREAK_RE.sub(MASK_CHAR, text[start:end]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


_LINE_BREAK_RE: Final = re.compile(r"[^\r\n]")


def _detect(text: str, region: str, members: Collection[str], gates: _Gates) -> list[Finding]:
    found: list[Finding] = []
    if gates.at_sign or gates.mail_words:
        emails = find_emails(text, words=gates.mail_words)
        found.extend(Finding("email", start, end) for start, end in emails)
    if gates.mail_words:
        names = find_mail_names(text)
        found.extend(Finding("email", start, end) for start, end in names)
    if gates.phone:
        phones = find_phones(text, region, spelled=gates.spelled)
        found.extend(Finding("phone", start, end) for start, end in phones)
    if gates.networks or gates.links:
        socials = find_socials(text, members, gates.networks, links=gates.links)
        found.extend(Finding("social", start, end) for start, end in socials)
    return found


def _member_spans(text: str, members: Collection[str]) -> list[tuple[int, int]]:
    if not members or "@" not in text:
        return []
    return [(m.start, m.end) for m in find_mentions(text) if m.key in members]


def _inside(finding: Finding, spans: list[tuple[int, int]]) -> bool:
    return any(finding.start < end and start < finding.end for start, end in spans)


def _merge(findings: list[Finding]) -> list[Finding]:
    """Sorted and disjoint: overlapping findings become one, of the longer one's kind."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            longer = f if f.end - f.start > last.end - last.start else last
            merged[-1] = Finding(longer.kind, last.start, max(last.end, f.end))
        else:
            merged.append(f)
    return merged
