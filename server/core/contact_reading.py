"""What the contact guard reads (R8): a text as its reader sees it, and the way back.

Members disguise details with characters that look like others, or show nothing. The guard
reads a normalised view of the text and maps what it finds back onto the text as written,
so masking keeps the text's length and every other index (mentions). The rules:

- A character that stands for an ASCII letter, digit or sign is read as it: fullwidth,
  mathematical and circled forms (Unicode NFKC), digits of any script, and letters of other
  scripts that look like Latin ones (Unicode's confusables: ``lookalikes``).
- Invisible characters (Unicode's default-ignorable code points: zero-width spaces and
  joiners, bidirectional marks...) are dropped, so ``514<ZWSP>555`` reads ``514555``.
- Symbols and emoji, the emoji selector and the keycap mark read as a space:
  ``5<FE0F><20E3>`` reads ``5`` and two spaces, and ``555 ☎ 0187`` three groups.
- ``_`` between two digits reads as a space; a network's name spelled out one letter at a
  time (``s n a p``, ``s.n.a.p``) reads as the name.
- A finding covers the characters as written, from the first one read to the last, and the
  marks written on the last (an accent, the keycap of ``7<FE0F><20E3>``).

Cost: most comments are ASCII, or hold only accented Latin letters, punctuation and a few
emoji: a scan in C finds their few other characters, none to fold, and the text is its own
view. Only a text with something to fold pays for building the view.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Final

from parley.server.core.lookalikes import INVISIBLE, PROTOTYPES, ascii_look_alike

_SPACED: Final = " "
_LOOKED_AT: Final = frozenset({"So", "Sk", "Me", "Nd"})
# Dashes, which the phone reading takes as they are: folding them would cost for nothing.
_KEPT_FIRST: Final = 0x2010
_KEPT_LAST: Final = 0x2015
_TO_SPACE: Final = frozenset({"So", "Sk", "Me"})
_SELECTORS: Final = frozenset("\ufe0e\ufe0f")


def _fold(char: str) -> str:
    """What ``char`` (not ASCII) is read as; ``char`` itself when nothing else."""
    if char in _SELECTORS:
        return _SPACED
    if char in INVISIBLE:
        return ""
    same = ascii_look_alike(char)
    if same is not None:
        return same
    folded = unicodedata.normalize("NFKC", char)
    if folded != char and folded.isascii() and any(c.isalnum() for c in folded):
        return folded  # "⑴" reads "(1)", "№" reads "No"
    if unicodedata.category(char) in _TO_SPACE:
        return _SPACED
    return char


def _folds() -> dict[str, str]:
    prototyped = frozenset(PROTOTYPES)
    folds: dict[str, str] = {}
    for code in range(0x100, 0x20000):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cn" or _KEPT_FIRST <= code <= _KEPT_LAST:
            continue
        if (
            category in _LOOKED_AT
            or char in prototyped
            or not unicodedata.is_normalized("NFKC", char)
        ):
            folded = _fold(char)
            if folded != char:
                folds[char] = folded
    # Latin-1 holds the signs of ordinary French texts (degrees, "n°", guillemets): of it,
    # only the superscript digits are read otherwise.
    folds.update({"\u00b9": "1", "\u00b2": "2", "\u00b3": "3"})
    folds.update((char, "") for char in INVISIBLE if char not in _SELECTORS)
    folds.update(dict.fromkeys(_SELECTORS, _SPACED))
    return folds


FOLDS: Final = _folds()
_ONE_FOR_ONE: Final = frozenset(char for char, folded in FOLDS.items() if len(folded) == 1)


# Symbols and emoji (and the emoji selector) matter between digits only: a text with fewer
# than seven digits is not read for them.
_SYMBOLS: Final = frozenset(char for char, folded in FOLDS.items() if folded == _SPACED)
_NOT_DIGITS: Final = bytes(b for b in range(256) if not 48 <= b <= 57)
_ASCII_BYTES: Final = bytes(range(128))
_DIGIT_UNDERSCORE_RE: Final = re.compile(r"(?<=[0-9])_(?=[0-9])")
# "s n a p", "s.n.a.p", "m e s s e n g e r": three letters or more, one at a time.
_SPELLED_RE: Final = re.compile(r"(?<![^\W\d_])[^\W\d_](?:[ .][^\W\d_]){2,}(?![^\W\d_])")
_MARKS: Final = frozenset({"Mn", "Me"})
# Letters as "a", spaces and dots as " ", anything else as "-": three one-letter words in a
# row are then " a a a " (a letter written in two bytes is "aa": no spelled name has one).
_SHAPE: Final = bytes(
    97 if chr(b).isascii() and chr(b).isalpha() else 32 if b in b" ." else 45 for b in range(256)
)


class Reading:
    """A text's view, and the way back from a span of the view to the text as written."""

    __slots__ = ("_origin", "text", "written")

    def __init__(self, written: str, text: str, origin: list[int] | None) -> None:
        self.written = written
        self.text = text
        self._origin = origin  # the written index of each character read; None: the same

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The written characters read as ``text[start:end]``, with the marks on the last."""
        origin = self._origin
        if origin is not None:
            first = origin[start]
            last = origin[end - 1] + 1 if end > start else first
            nxt = origin[end] if end < len(origin) else len(self.written)
            # Dropped characters between the last one read and the next belong to it.
            start, end = first, max(last, nxt)
        written = self.written
        while end < len(written) and (
            written[end] in _SELECTORS or unicodedata.category(written[end]) in _MARKS
        ):
            end += 1
        return start, end


def read(text: str, words: Collection[str]) -> Reading | None:
    """The view of ``text`` the guard reads, or None when ``text`` reads as written (most
    texts); ``words`` are the names that may be spelled out one letter at a time."""
    folded = text if text.isascii() else _folded(text)
    if isinstance(folded, Reading):
        return _spelled(folded, words)
    view = _DIGIT_UNDERSCORE_RE.sub(" ", folded) if "_" in folded else folded
    shape = view.encode().translate(_SHAPE)
    if b" a a a " in shape or shape.startswith(b"a a a") or shape.endswith(b" a a a"):
        return _spelled(Reading(text, view, None), words)
    return None if view is text else Reading(text, view, None)


def _folded(text: str) -> str | Reading:
    """``text`` (not ASCII) with its characters folded one for one, or its Reading when
    some characters read as none or as several."""
    # Its characters that are not ASCII, found in C: the UTF-8 bytes without the ASCII ones.
    others = text.encode().translate(None, _ASCII_BYTES).decode()
    found = {char for char in set(others) if char in FOLDS}
    if not found:
        return text
    if _SYMBOLS.issuperset(found) and len(text.encode().translate(None, _NOT_DIGITS)) < 7:
        return text
    if not _ONE_FOR_ONE.issuperset(found):
        return _rebuilt(text)
    view = text
    for char in found:
        view = view.replace(char, FOLDS[char])
    return view


def _rebuilt(text: str) -> Reading:
    """The view of a text where some characters read as none or as several."""
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = FOLDS.get(char, char)
        pieces.append(folded)
        origin.extend([index] * len(folded))
    view = "".join(pieces)
    if "_" in view:
        view = _DIGIT_UNDERSCORE_RE.sub(" ", view)
    return Reading(text, view, origin)


def _spelled(reading: Reading, words: Collection[str]) -> Reading:
    """``reading`` with the names of ``words`` spelled out one letter at a time joined."""
    view = reading.text
    cuts: list[int] = []  # view indices of the separators to drop
    for match in _SPELLED_RE.finditer(view):
        letters = match[0][::2]
        if letters.lower() in words:
            cuts.extend(range(match.start() + 1, match.end(), 2))
    if not cuts:
        return reading
    origin = reading._origin or list(range(len(reading.written)))
    dropped = set(cuts)
    kept = [i for i in range(len(view)) if i not in dropped]
    return Reading(reading.written, "".join(view[i] for i in kept), [origin[i] for i in kept])
