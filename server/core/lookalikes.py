"""Text that looks like other text (Unicode TR 39): invisible characters and confusables.

- Invisible: Unicode's ``Default_Ignorable_Code_Point`` characters (zero-width spaces and
  joiners, bidirectional marks, the soft hyphen, variation selectors, tags, Hangul fillers)
  show nothing, so ``drop_invisible`` removes them before two texts are compared.
- Confusable: Unicode's confusables data (the ``confusable-homoglyphs`` package ships it
  as ``confusables.json``, built from Unicode's ``confusables.txt``) groups the
  characters that look alike around one prototype: Cyrillic o (U+043E) and Greek omicron
  (U+03BF) with Latin ``o``, the script l (U+2113) and ``I`` with ``l``. In the data each
  group is a star around its prototype; a group of two names no direction, so the sequence
  of several characters (``m`` looks like ``rn``), else the ASCII one, else the lower code
  point, stands for it.
- ``skeleton`` is TR 39's: NFD, invisible characters dropped, each character replaced by
  its prototype, NFD again. Two strings with one skeleton look alike.
- ``ascii_look_alike`` is what the contact guard reads a character as: the ASCII letter,
  digit or sign it stands for (a fullwidth or mathematical digit, an Arabic-Indic digit, a
  Cyrillic a), if any.
"""

from __future__ import annotations

import json
import unicodedata
from importlib.resources import files
from typing import Any, Final

# DerivedCoreProperties.txt, Default_Ignorable_Code_Point (Unicode 15).
_IGNORABLE_RANGES: Final = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
INVISIBLE: Final = frozenset(
    chr(c) for low, high in _IGNORABLE_RANGES for c in range(low, high + 1)
)
_DROP: Final[dict[int, None]] = dict.fromkeys(map(ord, INVISIBLE))
_MARK: Final = "\u200e"  # the data wraps right-to-left characters in LRMs


def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype, where it is not its own."""
    # The package's data file, read as it is: its module would also load script tables.
    data: dict[str, list[dict[str, Any]]] = json.loads(
        files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    groups = {
        key.replace(_MARK, ""): [h["c"].replace(_MARK, "") for h in found]
        for key, found in data.items()
    }
    prototypes: dict[str, str] = {}
    for char, alike in groups.items():
        if len(char) != 1 or len(alike) != 1:
            continue  # a sequence, or the prototype of several characters
        other = alike[0]
        if len(groups.get(other, ())) == 1 and not _stands_for_two(other, char):
            continue  # a group of two, which this character stands for
        prototypes[char] = other
    # A prototype may hold a character the data maps further (its groups of two chose
    # otherwise): follow it, so that a skeleton is its own skeleton.
    for _ in range(4):
        resolved = {
            c: "".join(prototypes.get(p, p) for p in proto) for c, proto in prototypes.items()
        }
        if resolved == prototypes:
            break
        prototypes = resolved
    return {c: p for c, p in prototypes.items() if p != c}


def _stands_for_two(one: str, other: str) -> bool:
    """Whether ``one`` rather than ``other`` stands for a group of the two."""
    if len(one) != len(other):
        return len(one) > len(other)
    if one.isascii() != other.isascii():
        return one.isascii()
    return one < other


PROTOTYPES: Final = _prototypes()
_SKELETON: Final[dict[int, str | None]] = {
    **{ord(c): p for c, p in PROTOTYPES.items()},
    **_DROP,
}


def drop_invisible(text: str) -> str:
    """``text`` without its invisible characters."""
    return text.translate(_DROP)


def skeleton(text: str) -> str:
    """TR 39's skeleton of ``text``: equal for strings that look alike."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", decomposed.translate(_SKELETON))


_ASCII_SIGNS: Final = frozenset("@.+-_:/()")


def ascii_look_alike(char: str) -> str | None:
    """The ASCII letter, digit or sign (``@ . + - _ : / ( )``) that ``char`` is written as
    a look-alike of; None when it stands for none (or is ASCII already)."""
    if char.isascii():
        return None
    if unicodedata.category(char) == "Nd":
        return str(unicodedata.digit(char))
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and folded.isascii():
        return folded if folded.isalnum() or folded in _ASCII_SIGNS else None
    prototype = PROTOTYPES.get(folded, "")
    if len(prototype) == 1 and (prototype.isascii() and prototype.isalnum()):
        return prototype
    return prototype if prototype in _ASCII_SIGNS else None
