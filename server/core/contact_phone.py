"""Phone numbers in members' texts (R8), in digits, number words or both.

``contact_guard`` runs ``find_phones`` when its cheap look saw seven digits close together or
a number word among numbers, and makes the ``(start, end)`` spans it yields into findings.
The rules:

- Phone. Digit groups and number words (French and English, ``oh``/``o`` for zero) that
  follow each other with at most three spaces, dots, dashes, commas or brackets between them
  are read as one digit string, and ``phonenumbers`` decides. ``+``, ``00`` or ``011`` in
  front: a valid international number. Otherwise, in a NANP region, 10 digits (or ``1`` +
  10) with an area code in service are a phone, whatever the exchange; in another region,
  what ``phonenumbers`` finds valid there; ``06 12 34 56 78`` is read as French, in pairs
  only. The groups written together must be groups of the number (``514 555 0123``,
  ``5145550123``, ``(514) 555-0123``): sizes ``32 34 36 38 40`` or ``1 200,00`` are not
  phones. Digits written one by one must be spaced alike except between groups
  (``5 1 4 - 5 5 5 - 0 1 2 3``, not the shoe sizes ``7 7.5 8 8.5 9``). ``O``/``o`` and
  ``l``/``I`` inside a digit group count as 0 and 1, at most three per number of ten
  digits or more (``5I4 555 O123``). Seven digits (``555-0123``) count only after a phone
  word (``cell``, ``appelle``, ``text``...).
- The 10-digit question. A NANP-looking number is a phone unless the words around it say
  otherwise. The nearest context word in its clause, 48 characters before or 24 after,
  decides: a tracking or reference word (``suivi``, ``tracking``, ``colis``, ``commande``,
  ``order``, ``annonce``, ``facture``, ``ISBN``...) or a carrier (DHL, UPS, FedEx,
  Purolator, Postes Canada...) makes it a reference, a phone word a phone. A number written
  in groups is a phone when a phone word is anywhere around, and a reference word after it
  does not count ("514 555 0123 pour le suivi" is a follow-up): references come in one
  block. ``#``, ``n°`` or ``$`` right before it, or ``$`` right after, make it a reference or
  a price ("mon # 514…" is still a phone).
- Never a contact: postal addresses and codes, prices, sizes, dates and times, years, order
  and listing references, serial and model numbers, and tracking numbers: they have letters
  (``LM123456789CA``, ``1Z…``), or 12 to 22 digits (in groups of four or in one block), or
  a context word.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from functools import cache, lru_cache
from typing import Final, NamedTuple

import phonenumbers

from parley.server.core.contact_social import in_word, word_set

# Number words, which the cheap look in contact_guard reads too.
NUMBER_WORDS: Final = {
    **dict.fromkeys(("zero", "zéro", "oh", "o"), "0"),
    **dict.fromkeys(("un", "one"), "1"),
    **dict.fromkeys(("deux", "two"), "2"),
    **dict.fromkeys(("trois", "three"), "3"),
    **dict.fromkeys(("quatre", "four"), "4"),
    **dict.fromkeys(("cinq", "five"), "5"),
    **dict.fromkeys(("six",), "6"),
    **dict.fromkeys(("sept", "seven"), "7"),
    **dict.fromkeys(("huit", "eight"), "8"),
    **dict.fromkeys(("neuf", "nine"), "9"),
}

# What may sit between the digit groups of one number (the cheap look reads it too), and the
# letters read as digits.
GAP_CHARS: Final = r" \t\r\n\u00a0\u202f.\-\u2010-\u2014/()\[\],*|"
# Number words that make numbers of several digits: "cinq cent quatorze" is 514, "five
# hundred fourteen" too (the cheap look reads them as number words).
_TEENS_AND_TENS: Final = {
    "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15,
    "seize": 16, "vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50,
    "soixante": 60, "quatre-vingt": 80, "quatre-vingts": 80,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_HUNDREDS: Final = frozenset({"cent", "cents", "hundred"})
COMPOUND_WORDS: Final = frozenset({*_TEENS_AND_TENS, *_HUNDREDS})
_SINGLE_WORDS: Final = frozenset(NUMBER_WORDS)
_DIGITISH: Final = "0-9OolI"


@lru_cache(maxsize=256)
def _spelled_re(words: frozenset[str]) -> re.Pattern[str]:
    """The number ``words``; what comes before them is looked at afterwards."""
    return re.compile(rf"(?:{_word_pattern(words)})(?!\w)")


def _word_pattern(words: Collection[str]) -> str:
    """Case-insensitive alternation of ``words``; only ASCII letters change case."""
    ascii_words = sorted((w for w in words if w.isascii()), key=len, reverse=True)
    others = [
        "".join(f"[{re.escape(c)}{re.escape(c.upper())}]" for c in w)
        for w in words
        if not w.isascii()
    ]
    if ascii_words:
        others.append(f"(?a:(?i:{'|'.join(ascii_words)}))")
    return "|".join(others)


# Digit groups start on a digit, for speed; the letters before it are looked at afterwards.
_DIGITS_RE: Final = re.compile(rf"[0-9][{_DIGITISH}]*(?!\w)")
_PHONE_GAP_RE: Final = re.compile(rf"[{GAP_CHARS}]{{0,3}}")
# A word between two groups of one number: a short one in brackets, or a joining word.
_WORD_GAP_RE: Final = re.compile(
    r"""[ \t]{0,2}\([^\W\d_]{1,8}\)[ \t]{0,2}
    |[ \t]{1,2}(?i:then|puis|pis|et|and|ensuite|apr[eè]s|after|plus|m[eê]me)[ \t]{1,2}""",
    re.X,
)
# How the groups of a number joined by words must be written: 514 then 555 then 0187.
_WORDED_GROUPS: Final = ((3, 3, 4), (1, 3, 3, 4))
_LOOK_ALIKES: Final = str.maketrans("OolI", "0011")

# Words near a number that say what it is (lower case; "canada post", "my number" and words
# starting with "appel" or "contact" are read too).
_REFERENCE_CONTEXT: Final = word_set(
    """
    suivi tracking track tracker repérage reperage traçage tracage colis parcel package
    shipment waybill bordereau postes purolator fedex ups usps dhl intelcom canpar loomis
    nationex dicom chitchats commande order annonce listing ref réf référence reference
    facture invoice reçu recu receipt confirmation transaction série serie serial sku upc ean
    isbn imei modèle modele model dossier ticket claim réclamation reclamation code id membre
    member client customer item article produit product
    """
)
_PHONE_CONTEXT: Final = word_set(
    """
    call calls calling text texte textez texter texto textos sms tel tél téléphone telephone
    phone cell cellulaire mobile joindre rejoindre rejoins reach whatsapp signal telegram
    """
)
_WORD_RE: Final = re.compile(r"[^\W\d_]\w*")
_REFERENCE_MARK_RE: Final = re.compile(r"(?:[#$]|\b[Nn][°º]|\b[Nn][Oo]\.)[ \t]{0,2}\Z")
_CLAUSE_BREAK_RE: Final = re.compile(r"[!?;\n]|\.\s+(?=[A-ZÀ-Ý])")  # not "Réf. 2070368228"
_MY_NUMBER_RE: Final = re.compile(
    r"(?i:\b(?:mon|ton|son|my|your|his|her|notre|votre|our|t[ée]l|cell|phone|call)[ \t]*#)"
)
_PRICE_AFTER_RE: Final = re.compile(
    r"[ \t\u00a0\u202f]*(?:[$€£¢]|(?i:dollars?|piasses?|cad|usd)(?!\w))"
)


class _Token(NamedTuple):
    start: int
    end: int
    digits: str
    spelled: bool  # a number word
    plus: bool
    look_alikes: int  # letters read as digits
    worded: bool = False  # a word, not a gap, stands between it and the group before


def find_phones(text: str, region: str, *, spelled: frozenset[str]) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` of the phone numbers in ``text``, read as numbers of ``region``
    unless they say otherwise; ``spelled``: the number words that may be there."""
    nanp = phonenumbers.country_code_for_region(region) == 1
    sizes = frozenset((7, 10, 11) if nanp else range(8, 13))  # without +, 00 or 011
    for run in _runs(text, spelled=spelled):
        # The longest number from each token on; overlapping ones are merged later, so that
        # "zéro cinq un quatre…" hides the French and the Canadian reading both.
        for a in range(len(run)):
            best = 0
            digits = ""
            prefixed = run[a].plus or run[a].digits[0] == "0"
            for b in range(a, len(run)):
                digits += run[b].digits
                if len(digits) > 18:
                    break
                if (len(digits) in sizes or (prefixed and len(digits) >= 8)) and _is_phone(
                    text, run[a : b + 1], digits, region, nanp
                ):
                    best = b + 1
            if best:
                yield _phone_span(text, run[a].start, run[best - 1].end)


def _runs(text: str, *, spelled: frozenset[str]) -> Iterator[list[_Token]]:
    """Digit groups and number words that follow one another closely."""
    run: list[_Token] = []
    for token in _tokens(text, spelled=spelled):
        if run and not token.plus and not _PHONE_GAP_RE.fullmatch(text, run[-1].end, token.start):
            if not _WORD_GAP_RE.fullmatch(text, run[-1].end, token.start):
                yield run
                run = []
            else:  # "514 then 555", "514 (même) 555"
                token = token._replace(worded=True)
        elif run and token.plus:
            yield run
            run = []
        run.append(token)
    if run:
        yield run


def _tokens(text: str, *, spelled: frozenset[str]) -> list[_Token]:
    """The digit groups (``+`` and letters read as digits included) and number words, in
    order; a group glued to a word (``iPhone13``, ``W32``, ``1Z…``) is no number."""
    tokens: list[_Token] = []
    for m in _DIGITS_RE.finditer(text):
        start = m.start()
        while start and text[start - 1] in "OolI":
            start -= 1
        plus = text[start - 1 : start] == "+"
        if in_word(text, start - plus, "+"):
            continue  # "iPhone13", "W32", "a+33"
        written = text[start : m.end()]
        if written.isdigit():
            tokens.append(_Token(start - plus, m.end(), written, False, plus, 0))
        else:
            look_alikes = sum(c in "OolI" for c in written)
            digits = written.translate(_LOOK_ALIKES)
            tokens.append(_Token(start - plus, m.end(), digits, False, plus, look_alikes))
    if spelled:
        singles = spelled & _SINGLE_WORDS
        words = [
            _Token(m.start(), m.end(), NUMBER_WORDS[m[0].lower()], True, False, 0)
            for m in (_spelled_re(singles).finditer(text) if singles else ())
            if not in_word(text, m.start(), "")
        ]
        if not spelled.isdisjoint(COMPOUND_WORDS):
            words = _compounds(text, words)
        tokens.extend(words)
        tokens.sort()
    return tokens


_PHRASE_WORDS: Final = (NUMBER_WORDS.keys() - {"oh", "o"}) | COMPOUND_WORDS | {"et", "and"}
_PHRASE_WORD: Final = f"(?:{_word_pattern(_PHRASE_WORDS)})"
_PHRASE_RE: Final = re.compile(
    rf"(?<!\w){_PHRASE_WORD}(?:[ \t-]+(?:(?a:(?i:et|and))[ \t-]+)?{_PHRASE_WORD})*(?!\w)"
)
_PHRASE_PART_RE: Final = re.compile(rf"(?<!\w){_PHRASE_WORD}(?!\w)")


def _compounds(text: str, words: list[_Token]) -> list[_Token]:
    """``words`` with the numbers written in several words ("cinq cent quatorze", "trente-
    huit") as one token each, in place of the words they are made of."""
    found: list[_Token] = []
    for phrase in _PHRASE_RE.finditer(text):
        parts = [
            (m.start(), m.end(), m[0].lower())
            for m in _PHRASE_PART_RE.finditer(text, phrase.start(), phrase.end())
        ]
        if not any(p[2] in COMPOUND_WORDS for p in parts):
            continue
        numbers = _read_numbers(parts)
        if numbers:
            found.extend(numbers)
    if not found:
        return words
    covered = [(t.start, t.end) for t in found]
    kept = [w for w in words if not any(a <= w.start < b for a, b in covered)]
    return [*kept, *found]


def _read_numbers(parts: list[tuple[int, int, str]]) -> list[_Token]:
    """The numbers that number words in a row make: a new one starts where a word cannot
    go on the one before (a unit after a unit, a ten after a ten)."""
    numbers: list[_Token] = []
    value = start = end = 0
    last = ""  # the kind of the number's last word: "unit", "ten", "hundred"; "": none yet
    for part_start, part_end, word in parts:
        if word in ("et", "and"):
            continue
        kind, amount = _word_value(word)
        if last and _goes_on(value, last, kind, amount):
            value = value * 100 if kind == "hundred" else value + amount
            end = part_end
        else:
            if last:
                numbers.append(_number(start, end, value))
            value, start, end = amount, part_start, part_end
        last = kind
    if last:
        numbers.append(_number(start, end, value))
    return numbers


def _word_value(word: str) -> tuple[str, int]:
    if word in _TEENS_AND_TENS:
        return "ten", _TEENS_AND_TENS[word]
    if word in _HUNDREDS:
        return "hundred", 100
    return "unit", int(NUMBER_WORDS[word])


def _goes_on(value: int, last: str, kind: str, amount: int) -> bool:
    """Whether a word of ``kind`` worth ``amount`` goes on the number ``value`` so far."""
    if kind == "hundred":
        return last == "unit" and value < 10  # "cinq cent"
    if kind == "ten":  # "cent quatorze", "soixante-dix", "quatre-vingt-treize"
        tens_on_tens = last == "ten" and amount < 20 and value % 100 in (60, 80)
        return (last == "hundred" and value % 100 == 0) or tens_on_tens
    # a unit: "trente-huit", "dix-sept", "cent cinq"
    return last in ("ten", "hundred") and value % 10 == 0


def _number(start: int, end: int, value: int) -> _Token:
    return _Token(start, end, str(value), True, False, 0)


def _phone_span(text: str, start: int, end: int) -> tuple[int, int]:
    if text[start - 1 : start] == "(" and ")" in text[start:end]:
        start -= 1  # "(514) 555-0123" whole
    return start, end


def _is_phone(text: str, window: list[_Token], digits: str, region: str, nanp: bool) -> bool:
    look_alikes = sum(token.look_alikes for token in window)
    if look_alikes and (look_alikes > 3 or len(digits) < 10):
        return False  # "5I4 555 O123" is a disguise; "lol 1O1" is not
    if any(token.worded for token in window[1:]) and (
        not nanp or tuple(len(t.digits) for t in window) not in _WORDED_GROUPS
    ):
        return False  # words join the groups of a number only: "514 puis 555 puis 0187"
    first = window[0]
    prefix = 0  # digits of an international prefix written as digits: 00, or 011 in the NANP
    if not first.plus and not first.spelled:
        prefix = 3 if nanp and digits.startswith("011") else 2 * digits.startswith("00")
    if first.plus or prefix:
        if not 8 <= len(digits) - prefix <= 15 or not _valid_international(digits[prefix:]):
            return False
        context = _context(text, first.start, window[-1].end, grouped=len(window) > 1)
        return context != "reference"
    if nanp and digits[0] == "0" and any(len(t.digits) > 2 for t in window):
        return False  # a French number is read only in pairs: "06 12 34 56 78"
    bounds = _national_bounds(digits, region, nanp, trunk_ok=not first.spelled)
    if bounds is None or not _written_as(text, window, bounds):
        return False
    context = _context(text, first.start, window[-1].end, grouped=len(window) > 1)
    if len(digits) == 7:
        return context == "phone"
    return context != "reference"


def _written_as(text: str, window: list[_Token], bounds: frozenset[int]) -> bool:
    """Whether the window is grouped as the number is: each group of digits written together
    is one of its groups or several, and digits written one by one are all spaced alike
    except between groups ("5 1 4 - 5 5 5", not the sizes "7 7.5 8 8.5 9")."""
    offset = 0
    spacing = None
    previous: _Token | None = None
    for token in window:
        size = len(token.digits)
        if size > 1 and not (offset in bounds and offset + size in bounds):
            return False  # "32 34 36 38 40": groups that are not the number's own
        if previous is not None and size == 1 and len(previous.digits) == 1:
            gap = text[previous.end : token.start]
            if offset not in bounds:
                if spacing is None:
                    spacing = gap
                elif gap != spacing:
                    return False
        offset += size
        previous = token
    return True


def _national_bounds(
    digits: str, region: str, nanp: bool, *, trunk_ok: bool
) -> frozenset[int] | None:
    """Where the groups of ``digits`` fall if it is a number of ``region``; None if it is not."""
    size = len(digits)
    if nanp:
        if size == 11 and digits[0] == "1" and trunk_ok and _nanp_area(digits[1:4]):
            return frozenset((0, 1, 4, 7, 11))
        if size == 10 and _nanp_area(digits[:3]):
            return frozenset((0, 3, 6, 10))
        if size == 7 and digits[0] in "23456789":
            return frozenset((0, 3, 7))
        if size == 10 and digits[0] == "0":
            return _groups(digits, "FR")  # "06 12 34 56 78"
        return None
    return _groups(digits, region) if 8 <= size <= 12 else None


@cache
def _nanp_area(area: str) -> bool:
    """An area code in service somewhere in the NANP, for any exchange."""
    if area[0] in "01" or area[1:] == "11":
        return False
    probes = ("2345678", "5550123", "3456789", "7654321", "9876543", "4567890")
    numbers = (_parse("+1" + area + probe) for probe in probes)
    return any(n is not None and phonenumbers.is_valid_number(n) for n in numbers)


@lru_cache(maxsize=4096)
def _groups(digits: str, region: str) -> frozenset[int] | None:
    number = _parse(digits, region)
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    bounds = {0}
    for group in re.findall(r"\d+", formatted):
        bounds.add(max(bounds) + len(group))
    return frozenset(bounds) if max(bounds) == len(digits) else frozenset((0, len(digits)))


@lru_cache(maxsize=4096)
def _valid_international(digits: str) -> bool:
    number = _parse("+" + digits)
    return number is not None and phonenumbers.is_valid_number(number)


def _parse(number: str, region: str | None = None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None


def _context(text: str, start: int, end: int, *, grouped: bool) -> str | None:
    """What the words around a number say it is: "phone", "reference" or None.

    The nearest context word in the clause (48 characters before, 24 after) decides. A number
    written in groups (``514 555-0123``) is read as a phone unless a reference word comes
    before it with no phone word around: references and tracking numbers come in one block.
    """
    mark = _REFERENCE_MARK_RE.search(text, max(0, start - 6), start)
    if mark is not None and not _MY_NUMBER_RE.search(text, max(0, mark.start() - 8), start):
        return "reference"  # "#4501234567", "n° 4501234567", "$ 5145550123"; not "mon # 514…"
    if _PRICE_AFTER_RE.match(text, end):
        return "reference"
    lo = max(0, start - 48)
    for m in _CLAUSE_BREAK_RE.finditer(text, lo, start):
        lo = m.end()
    before = list(_WORD_RE.finditer(text, lo, start))
    ends = [i for i in (text.find(c, end) for c in "!?;\n") if i != -1]
    after = list(_WORD_RE.finditer(text, end, min([end + 24, *ends])))
    words = [m[0].lower() for m in (*before, *after)]
    nearest: tuple[int, str] | None = None
    for i, m in enumerate((*before, *after)):
        kind = _context_word(words[i], words[i - 1] if i else "")
        if kind is None:
            continue
        if grouped and kind == "phone":
            return kind
        if grouped and i >= len(before):
            continue  # "514 555 0123 pour le suivi": a follow-up, not a tracking number
        distance = start - m.end() if i < len(before) else m.start() - end
        if nearest is None or distance < nearest[0]:
            nearest = (distance, kind)
    return None if nearest is None else nearest[1]


def _context_word(word: str, previous: str) -> str | None:
    if word in _REFERENCE_CONTEXT or (word == "post" and previous == "canada"):
        return "reference"
    if word in _PHONE_CONTEXT or word.startswith(("appel", "contact")):
        return "phone"
    if word in ("number", "numéro", "numero") and previous in ("my", "mon"):
        return "phone"
    return None
