"""Contact details in members' texts (R8): e-mail addresses, phone numbers and social-media
accounts, in French and English, found in one read of the text and masked in place.

This module only reads text. What a room does with the findings (mask, refuse, let through)
and telling the author why belong to ``contact_policy``.

The rules, as ``find_contact_details`` applies them:

- Cost. Most comments hold nothing, so a cheap look comes first: an ``@``, seven digits
  close together, a network's or a mail provider's name, ``at`` with ``dot``/``point`` or a
  bracket, a number word among two other numbers, a ``/``. Without one, nothing else is read;
  with one, only the readings it calls for run.
- E-mail. ``name@domain.tld`` and its disguises: ``[at]``, ``(at)``, ``[@]``, ``arobase``,
  spaces around ``@`` and ``.``, ``[dot]``, ``(.)``, ``dot``/``point`` as words, letters
  spaced out around an ``@`` (``j e a n @ g m a i l . c o m``). The address runs from the
  local part to the last label that can end it: any TLD after a plain ``name@domain.tld``,
  a known TLD (``com``, ``ca``, ``fr``...) after a disguised dot, or a mail-only provider
  (``gmail``, ``hotmail``...) with no TLD. The English word ``at`` counts before a provider
  or before a disguised dot and a known TLD (``jean at monsite dot ca``), never before a
  plain ``site.ca`` ("available at simons.ca" is a shop) nor after a common word ("look at
  this dot com"); ``chez`` and ``(a)`` count only before a provider ("chez Videotron" is a
  shop). ``@`` with a space on one side only is a mention, unless a provider follows.
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
- Social. Links to the networks (``instagram.com/jean``, ``wa.me/…``, ``t.me/…``,
  ``discord.gg/…``; a Facebook Marketplace link is a listing, not an account) are masked
  whole. Next to a network's name (insta, IG, fb, messenger, tiktok, snap, whatsapp,
  telegram, signal, discord, twitter...) the handle is masked, never the name: an unknown
  ``@name`` within 24 characters in the same sentence; the word after ``:``, ``c'est``,
  ``=`` or ``username`` unless it is a common word; after ``is``/``est``/``sous`` a word
  shaped like a handle or ending the clause; after the bare name, a word shaped like a
  handle (``jean.t``, ``bibi_22``: letters with digits, ``_`` or an inner dot, not a size
  like ``2XL``) or, after an invitation ("ajoute-moi sur", "add me on"), a capitalised word
  or one ending the clause (a Facebook name may take two more capitalised words, also after
  a comma); a handle-shaped word just before "sur insta", "on IG". "Écris-moi sur
  WhatsApp" alone masks nothing; "signal", "sc" and "wa" need a handle's shape or an ``@``.
- Members. An ``@name`` or a handle whose ``username_key`` is in ``members`` is never
  masked: a mention is R4's business. Any other ``@name`` far from a network stays text.
- Never a contact: postal addresses and codes, prices, sizes, dates and times, years, order
  and listing references, serial and model numbers, and tracking numbers: they have letters
  (``LM123456789CA``, ``1Z…``), or 12 to 22 digits (in groups of four or in one block), or
  a context word.
- Findings are sorted and never overlap (overlapping ones merge, with the longer one's
  kind); masking replaces every character of a finding but line breaks by ``MASK_CHAR``, so
  lengths and every other index hold. After masking, the text is read again (at most three
  times in all) until nothing new is found, so the guard finds nothing in its own output.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final, Literal, NamedTuple

import phonenumbers

from server.core.mentions import find_mentions, username_key

ContactKind = Literal["email", "phone", "social"]

MASK_CHAR: Final = "•"
_ROUNDS: Final = 3  # reads of a text: the second one sees what masking the first revealed


@dataclass(frozen=True, slots=True)
class Finding:
    kind: ContactKind
    start: int  # code-point index into the text
    end: int  # exclusive


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- Words -------------------------------------------------------------------------------

_NUMBER_WORDS: Final = {
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
_NETWORKS: Final = _word_set(
    "instagram insta ig facebook fb messenger tiktok snapchat snap sc whatsapp whatsap "
    "watsapp watsap wapp wa telegram signal discord twitter kik wechat viber"
)
_NETWORK_FORMS: Final = ("tik tok", "whats app")  # also written with the space
# Names that are also plain words: a handle after them needs an "@" or a handle's shape.
_AMBIGUOUS_NETWORKS: Final = frozenset({"signal", "sc", "wa"})
_FACEBOOK: Final = frozenset({"facebook", "fb", "messenger"})
# Mail providers; the first ones are nothing else, so they make an address without a TLD
# ("jean at gmail"), where "chez Videotron" is a shop.
_MAIL_SERVICES: Final = _word_set("gmail hotmail ymail protonmail icloud gmx")
_PROVIDERS: Final = _MAIL_SERVICES | _word_set(
    "outlook yahoo videotron sympatico aol yandex cogeco"
)
_TLDS: Final = _word_set(
    "com ca fr net org info biz io co me us uk be ch qc edu gov gouv app dev xyz email"
)
# Words that are not handles: function words, chat words, and what follows "is"/"est" when
# a member talks about an account rather than gives it.
_NOT_HANDLES: Final = _word_set(
    """
    le la les l un une des de du d au aux a à et ou où mais donc or ni car que qui quoi quand
    comme si pour par sur sous dans en avec sans chez vers entre je j tu il elle on nous vous
    ils elles me m te t se s moi toi lui leur leurs mon ma mes ton ta tes son sa ses notre
    votre nos vos ce c cet cette ces ça ca cela ceci y est es suis sont être été ai as avons
    avez ont fait faire peux peut pouvez veux veut voulez aussi encore déjà deja là ici oui
    non ok okay merci svp stp sinon plutôt plutot directement direct pis puis alors bien très
    tres trop plus moins tout tous toute toutes rien même meme pareil privé privée prive
    public publique fermé fermée bloqué bloquée nouveau nouvelle hier demain aujourd soir
    matin maintenant tantôt tantot bientôt bientot sous
    the an and but so if then than to of in at by for from with without about as into i my
    mine you your yours he him his she her it its we us our they them their this that these
    those is are was were be been am do does did have has had can could will would should
    may might just also too very really please pls plz thanks thank thx ty yes no not now
    today tonight tomorrow yesterday later soon here there instead directly private closed
    blocked new same down hacked deleted dm pm message msg inbox chat bro man guys lol haha
    marketplace story stories post page group groupe account compte profile profil link lien
    live video vidéo photo photos pics pictures reel reels every all always often daily more
    mostly sometimes souvent toujours beaucoup parfois jamais never anymore only seulement
    juste lots much again avant après apres before after pendant during depuis since when
    where what who how why because until comment pourquoi parce jusqu look meet see arrive
    available sold bought got picked find found buy pick stop work works lives home
    """
)

# --- The cheap look ----------------------------------------------------------------------

# The text as UTF-8 with ASCII letters lower-cased and everything but ASCII letters and digits
# turned into spaces: its split() gives the words of the cheap look ("zéro" gives "z", "ro").
_ALNUM: Final = b"0123456789abcdefghijklmnopqrstuvwxyz"
_WORD_BYTES: Final = bytes(b if b in _ALNUM else 32 for b in range(256))


def _bytes_words(words: Collection[str]) -> frozenset[bytes]:
    return frozenset(
        piece for word in words for piece in word.encode().translate(_WORD_BYTES).split()
    )


_NUMBER_BYTES: Final = _bytes_words(_NUMBER_WORDS)


def _first_word(word: str) -> bytes:
    return word.encode().translate(_WORD_BYTES).split()[0]


# Number words by the first word the cheap look sees of them ("zéro" by "z").
_NUMBER_BY_BYTES: Final = {
    first: frozenset(w for w in _NUMBER_WORDS if _first_word(w) == first)
    for first in map(_first_word, _NUMBER_WORDS)
}
# A network's name as a regular expression, by the word the cheap look sees of it.
_NETWORK_BY_BYTES: Final = {
    **{name.encode(): name for name in _NETWORKS},
    **{form.split()[0].encode(): form.replace(" ", "[ \t]?") for form in _NETWORK_FORMS},
}
_ALL_NETWORKS: Final = frozenset(_NETWORK_BY_BYTES.values())
# Words that the site of a link to a network starts with (and "m.me/", "t.me/", "x.com/").
_LINK_BYTES: Final = _bytes_words(
    _word_set(
        "instagram instagr facebook fb messenger tiktok snapchat wa whatsapp telegram signal "
        "discord discordapp twitter threads linktr"
    )
)
_PROVIDER_BYTES: Final = _bytes_words(_PROVIDERS) | {b"arobase", b"arobas", b"arrobase", b"arrobas"}
_DOT_BYTES: Final = frozenset({b"dot", b"point"})
_LOOK_BYTES: Final = (
    _NUMBER_BYTES | _NETWORK_BY_BYTES.keys() | _LINK_BYTES | _PROVIDER_BYTES | {b"at"}
)

# What may sit between the digit groups of one number, and the letters read as digits.
_GAP_CHARS: Final = r" \t\r\n\u00a0\u202f.\-\u2010-\u2014/()\[\],*|"
_DIGITISH: Final = "0-9OolI"
# Seven real digits close together: the least a phone has when it has fewer than three
# number words in a row (look-alike letters come only in numbers of ten digits or more, at
# most three; one word next to one group never makes the number's groups). Starting on a
# digit keeps the scan fast.
_DIGIT_RUN_RE: Final = re.compile(rf"[0-9](?:[{_GAP_CHARS}OolI]{{0,6}}[0-9]){{6}}")


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
_EVERYTHING: Final = _Gates(True, True, True, frozenset(_NUMBER_WORDS), _ALL_NETWORKS, True)


def _gates(text: str) -> _Gates:
    """What could be in ``text``, from a few scans of it that all run in C."""
    low = text.encode().lower()
    words = low.translate(_WORD_BYTES).split()
    hits = _LOOK_BYTES.intersection(words)
    numbers = not hits.isdisjoint(_NUMBER_BYTES)
    phone = _DIGIT_RUN_RE.search(text) is not None or (numbers and _three_numbers_in_a_row(words))
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
    gates = _gates(text)
    if gates is _NOTHING:
        return []
    region = region.upper()
    protected = _member_spans(text, members)
    findings: list[Finding] = []
    work = text
    for _ in range(_ROUNDS):
        found = [f for f in _detect(work, region, members, gates) if not _inside(f, protected)]
        if not found:
            break
        findings = _merge([*findings, *found])
        work = mask_contact_details(text, findings)
        gates = _gates(work)
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
        found.extend(_emails(text, words=gates.mail_words))
    if gates.phone:
        found.extend(_phones(text, region, spelled=gates.spelled))
    if gates.networks or gates.links:
        found.extend(_socials(text, members, gates.networks, links=gates.links))
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


# --- E-mail addresses ----------------------------------------------------------------------

_SP: Final = r"[ \t]"
_LOCAL_RE: Final = re.compile(rf"[\w+\-](?:[\w+\-]|\.(?=[\w+\-]))*(?P<sp>{_SP}{{0,2}})\Z")
# A local part for the word forms may itself hide its dots: "jean dot tremblay at gmail".
_LOCAL_WORDS_RE: Final = re.compile(
    rf"""[\w+\-]+(?:(?:\.|{_SP}+(?a:(?i:dot|point)){_SP}+
       |{_SP}*[\[(]{_SP}*(?a:(?i:dot|point|\.)){_SP}*[\])]{_SP}*)[\w+\-]+)*{_SP}*\Z""",
    re.X,
)
_LABEL_RE: Final = re.compile(r"[\w\-]+")
_DOT_RE: Final = re.compile(
    rf"""(?P<plain>\.(?!{_SP}))
    | (?P<spaced>{_SP}{{1,2}}\.{_SP}{{0,2}}|\.{_SP}{{1,2}})
    | (?P<disguised>{_SP}*[\[({{<]{_SP}*(?a:(?i:\.|dot|point)){_SP}*[\])}}>]{_SP}*
                   |{_SP}+(?a:(?i:dot|point)){_SP}+)""",
    re.X,
)
_AT_WORD_RE: Final = re.compile(
    rf"""{_SP}*[\[({{<]{_SP}*(?P<bracket>(?a:(?i:at|@|arr?obase?|a))){_SP}*[\])}}>]{_SP}*
    | {_SP}+(?P<word>(?a:(?i:arr?obase?|at|chez))){_SP}+""",
    re.X,
)
# Three or more single characters between single spaces: "j e a n @ g m a i l . c o m".
_SPACED_OUT_RE: Final = re.compile(r"(?<!\S)\S(?: \S){2,}(?!\S)")


class _Domain(NamedTuple):
    labels: list[str]  # lower-cased
    ends: list[int]  # end index in the text of each label
    seps: list[str]  # how labels[1:] are joined to the one before: plain, spaced, disguised


def _emails(text: str, *, words: bool) -> Iterator[Finding]:
    yield from _addresses(text, words=words)
    if " @ " in text and _SPACED_OUT_RE.search(text):
        view, where = _closed_up(text)
        for f in _addresses(view, words=False):
            yield Finding("email", where[f.start], where[f.end - 1] + 1)


def _addresses(text: str, *, words: bool) -> Iterator[Finding]:
    at = text.find("@")
    while at != -1:
        found = _address(text, at, at + 1, "@")
        if found is not None:
            yield found
        at = text.find("@", at + 1)
    if not words:
        return
    for m in _AT_WORD_RE.finditer(text):
        word = m["word"]
        if word is None:  # "[at]", or "(a)" that only a provider's name makes an at
            form = "(a)" if m["bracket"].lower() == "a" else "bracket"
        else:
            form = "arobase" if word.lower().startswith("ar") else word.lower()
        found = _address(text, m.start(), m.end(), form)
        if found is not None:
            yield found


def _closed_up(text: str) -> tuple[str, list[int]]:
    """``text`` with the spaces between spaced-out letters taken out, and where each of the
    remaining characters was in ``text``."""
    pieces: list[str] = []
    where: list[int] = []
    done = 0
    for m in _SPACED_OUT_RE.finditer(text):
        pieces.append(text[done : m.start()])
        where.extend(range(done, m.start()))
        pieces.append(m[0][::2])
        where.extend(range(m.start(), m.end(), 2))
        done = m.end()
    pieces.append(text[done:])
    where.extend(range(done, len(text)))
    return "".join(pieces), where


def _address(text: str, at_start: int, at_end: int, form: str) -> Finding | None:
    """The address around the at-token ``text[at_start:at_end]``, if its sides make one."""
    lo = max(0, at_start - 80)
    if form == "@":
        local = _LOCAL_RE.search(text, lo, at_start)
        if local is None:
            return None
        start, space_before = local.start(), len(local["sp"])
    else:
        local = _LOCAL_WORDS_RE.search(text, lo, at_start)
        if local is None:
            return None
        start, space_before = local.start(), 0
        first = _LABEL_RE.match(text, start)
        if form in ("at", "chez") and (first is None or first[0].lower() in _NOT_HANDLES):
            return None  # "bought it at simons dot ca"
    domain, space_after = _domain(text, at_end)
    if form in ("at", "chez") and domain.labels and domain.labels[0] in _NOT_HANDLES:
        return None  # "look at this dot com"
    kept = _labels_kept(form, domain, space_before, space_after) if domain.labels else 0
    return Finding("email", start, domain.ends[kept - 1]) if kept else None


def _domain(text: str, pos: int) -> tuple[_Domain, int]:
    """The labels after an at-token and how they are joined; the spaces before them."""
    lead = len(text[pos : pos + 2]) - len(text[pos : pos + 2].lstrip(" \t"))
    labels: list[str] = []
    ends: list[int] = []
    seps: list[str] = []
    at = pos + lead
    while len(labels) < 8:
        label = _LABEL_RE.match(text, at)
        if label is None:
            break
        labels.append(label[0].lower())
        ends.append(label.end())
        dot = _DOT_RE.match(text, label.end())
        if dot is None:
            break
        seps.append(dot.lastgroup or "plain")
        at = dot.end()
    return _Domain(labels, ends, seps[: max(len(labels) - 1, 0)]), lead


def _labels_kept(form: str, domain: _Domain, space_before: int, space_after: int) -> int:
    """How many labels of ``domain`` the address takes (0: it is no address)."""
    labels = domain.labels
    provider = labels[0] in _PROVIDERS
    mail_only = labels[0] in _MAIL_SERVICES
    bare = form == "@" and not space_before and not space_after  # jean@gmail.com
    if bare or form in ("at", "chez"):
        allowed = {"plain", "disguised"}
    elif form == "@" and not (space_before and space_after):
        allowed = {"plain"} if provider else set()  # "merci @marie.ca": a mention, not mail
    else:
        allowed = {"plain", "spaced", "disguised"}
    if form == "@":  # "jean@gmail", "jean @ gmail"
        best = int((bare and provider) or bool(space_before and space_after and mail_only))
    else:  # "jean at gmail", "jean [at] hotmail"
        best = int(mail_only)
    for kept in range(2, len(labels) + 1):
        seps = domain.seps[: kept - 1]
        if not allowed.issuperset(seps):
            break
        tld = labels[kept - 1]
        plain = all(sep == "plain" for sep in seps)
        if bare and plain:
            ok = len(tld) >= 2 and tld.isascii() and tld.isalpha()
        elif form in ("chez", "(a)"):
            ok = provider and tld in _TLDS
        elif form == "at":
            ok = tld in _TLDS and (provider or not plain)
        else:
            ok = tld in _TLDS
        if ok:
            best = kept
    return best


# --- Phone numbers -------------------------------------------------------------------------


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
_PHONE_GAP_RE: Final = re.compile(rf"[{_GAP_CHARS}]{{0,3}}")
_LOOK_ALIKES: Final = str.maketrans("OolI", "0011")

# Words near a number that say what it is (lower case; "canada post", "my number" and words
# starting with "appel" or "contact" are read too).
_REFERENCE_CONTEXT: Final = _word_set(
    """
    suivi tracking track tracker repérage reperage traçage tracage colis parcel package
    shipment waybill bordereau postes purolator fedex ups usps dhl intelcom canpar loomis
    nationex dicom chitchats commande order annonce listing ref réf référence reference
    facture invoice reçu recu receipt confirmation transaction série serie serial sku upc ean
    isbn imei modèle modele model dossier ticket claim réclamation reclamation code id membre
    member client customer item article produit product
    """
)
_PHONE_CONTEXT: Final = _word_set(
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


def _phones(text: str, region: str, *, spelled: frozenset[str]) -> Iterator[Finding]:
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
                yield _phone_finding(text, run[a].start, run[best - 1].end)


def _runs(text: str, *, spelled: frozenset[str]) -> Iterator[list[_Token]]:
    """Digit groups and number words that follow one another closely."""
    run: list[_Token] = []
    for token in _tokens(text, spelled=spelled):
        if run and (token.plus or not _PHONE_GAP_RE.fullmatch(text, run[-1].end, token.start)):
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
        if _in_word(text, start - plus, "+"):
            continue  # "iPhone13", "W32", "a+33"
        written = text[start : m.end()]
        if written.isdigit():
            tokens.append(_Token(start - plus, m.end(), written, False, plus, 0))
        else:
            look_alikes = sum(c in "OolI" for c in written)
            digits = written.translate(_LOOK_ALIKES)
            tokens.append(_Token(start - plus, m.end(), digits, False, plus, look_alikes))
    if spelled:
        for m in _spelled_re(spelled).finditer(text):
            if not _in_word(text, m.start(), ""):
                digit = _NUMBER_WORDS[m[0].lower()]
                tokens.append(_Token(m.start(), m.end(), digit, True, False, 0))
        tokens.sort()
    return tokens


def _phone_finding(text: str, start: int, end: int) -> Finding:
    if text[start - 1 : start] == "(" and ")" in text[start:end]:
        start -= 1  # "(514) 555-0123" whole
    return Finding("phone", start, end)


def _is_phone(text: str, window: list[_Token], digits: str, region: str, nanp: bool) -> bool:
    look_alikes = sum(token.look_alikes for token in window)
    if look_alikes and (look_alikes > 3 or len(digits) < 10):
        return False  # "5I4 555 O123" is a disguise; "lol 1O1" is not
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


# --- Social accounts -----------------------------------------------------------------------

_SOCIAL_URL_RE: Final = re.compile(
    r"""(?<![\w.@/])(?:https?://)?(?:(?:www|m|mobile|web|api|chat|vm)\.)?
    (?a:(?i:instagram\.com|instagr\.am|facebook\.com|fb\.com|fb\.me|m\.me|messenger\.com
      |tiktok\.com|snapchat\.com|wa\.me|whatsapp\.com|t\.me|telegram\.me|signal\.me
      |discord\.gg|discord\.com|discordapp\.com|x\.com|twitter\.com|threads\.net|linktr\.ee))
    /(?!(?i:marketplace)(?!\w))[\w@~%+\-]
    (?:[\w@.~%+\-/?=&\#]*[\w/=])?""",
    re.X,
)


@lru_cache(maxsize=256)
def _spelled_re(words: frozenset[str]) -> re.Pattern[str]:
    """The number ``words``; what comes before them is looked at afterwards."""
    return re.compile(rf"(?:{_word_pattern(words)})(?!\w)")


@lru_cache(maxsize=256)
def _network_re(networks: frozenset[str]) -> re.Pattern[str]:
    """The names of ``networks``; what comes before them is looked at afterwards."""
    return re.compile(rf"(?a:(?i:{'|'.join(sorted(networks, key=len, reverse=True))}))(?!\w)")


_LINK_RE: Final = re.compile(
    rf"""(?P<strong>{_SP}*(?:[:=]|->|=>|→|➡\ufe0f?|»){_SP}*
       |{_SP}*,?{_SP}+(?i:c['\u2019]est|cest|c|it{_SP}is|it['\u2019]s){_SP}+
       |{_SP}+(?i:user(?:name)?|handle|pseudo|nom|name|id|compte|account)
            (?:{_SP}*(?:[:=]|(?i:is|est|c['\u2019]est)(?!\w)){_SP}*|{_SP}+))
    |(?P<weak>{_SP}+(?i:is|est|its|sous|under|as)
        (?:{_SP}+(?i:le{_SP}+nom|the{_SP}+name|name|nom))?{_SP}+)
    |(?P<space>{_SP}+\(?|\(|{_SP}+-{_SP}+)
    |(?P<comma>{_SP}*,{_SP}+)""",
    re.X,
)
_HANDLE_RE: Final = re.compile(r"@?\w(?:[\w.\-]*\w)?(?:\#\d{4})?")
_AT_HANDLE_RE: Final = re.compile(r"(?<![\w.+\-/%&~@])@\w(?:[\w.\-]*\w)?(?!@)")
_NAME_WORD_RE: Final = re.compile(r"[ \t]+[A-ZÀ-Ý][\w\-]*")
_INVITE_RE: Final = re.compile(
    r"""(?:(?:add|follow|dm|message|msg|text|contact|reach|find|hit|write|ping)\s+(?:me|us)
          (?:\s+up)?
       |(?:ajout|suis|suiv|[ée]cri|text|contact|trouv|retrouv|parl|jas|rejoin|[ée]cris)\w*
          [\s\-]*(?:moi|nous)
       |je\s+suis|i['\u2019]?m|i\s+am)
    \s+(?:on|at|via|sur|par|dans|in)\s+(?:my\s+|mon\s+|le\s+|the\s+)?\Z""",
    re.X | re.I,
)
_ON_NETWORK_RE: Final = re.compile(
    r"[ \t]+(?i:sur|on|in|dans|via)[ \t]+(?:(?i:mon|my|le)[ \t]+)?\Z"
)
_HANDLE_END_RE: Final = re.compile(r"(?<![\w@.])\w(?:[\w.\-]*\w)?\Z")
# Sizes, models and times: "2XL", "W32", "32x34", "10h30" are not handles.
_SIZE_LIKE_RE: Final = re.compile(r"\d+[a-zA-Z]{1,3}|[a-zA-Z]{1,2}\d+|\d+[xX]\d+|\d{1,2}h\d{2}")
_CLAUSE_END_RE: Final = re.compile(r"[ \t]*(?:[.,;:!?)\n]|\Z)")
_SENTENCE_END_RE: Final = re.compile(r"[.!?](?:\s|\Z)|\n")
_NEAR: Final = 24  # characters between a network's name and an @name it applies to


def _socials(
    text: str, members: Collection[str], names: frozenset[str], *, links: bool
) -> Iterator[Finding]:
    if links:
        for m in _SOCIAL_URL_RE.finditer(text):
            yield Finding("social", m.start(), m.end())
    found = _network_re(names).finditer(text) if names else ()
    networks = [
        (m.start(), m.end(), m[0].lower()) for m in found if not _in_word(text, m.start(), ".@/")
    ]
    for start, end, name in networks:
        after = _handle_after(text, start, end, name, members)
        if after is not None:
            yield after
        before = _handle_before(text, start, members)
        if before is not None:
            yield before
    if networks and "@" in text:
        starts = [start for start, _, _ in networks]
        for h in _AT_HANDLE_RE.finditer(text):
            if username_key(h[0][1:]) in members:
                continue
            first = bisect_left(starts, h.start() - _NEAR - 16)  # 16: the longest name
            nearby = networks[first : bisect_right(starts, h.end() + _NEAR)]
            if any(_near(text, h.start(), h.end(), start, end) for start, end, _ in nearby):
                yield Finding("social", h.start(), h.end())


def _handle_after(
    text: str, start: int, end: int, name: str, members: Collection[str]
) -> Finding | None:
    """The handle a network's name introduces: "mon snap c'est bibi22", "insta: jean.t"."""
    link = _LINK_RE.match(text, end)
    if link is None:
        return None
    handle = _HANDLE_RE.match(text, link.end())
    if handle is None or text[handle.end() : handle.end() + 1] == "@":
        return None
    word = handle[0]
    if word.startswith("@"):
        return None  # an @name: _near decides, for every @name alike
    if word.isdigit() or username_key(word) in members:
        return None
    kind = link.lastgroup
    if name in _AMBIGUOUS_NETWORKS and kind == "strong":
        kind = "weak"
    common = word.lower() in _NOT_HANDLES or len(word) < 2
    if kind == "strong":
        ok = not common
    elif kind == "weak":
        ok = _handle_like(word) or (not common and _ends_clause(text, handle.end()))
    elif kind == "space":
        named = word[0].isupper() or _ends_clause(text, handle.end())
        ok = _handle_like(word) or (not common and named and _invited(text, start))
    else:  # a comma: "Ajoute-moi sur Messenger, Marie Lapointe", not "…sur WhatsApp, Julie"
        full_name = (
            name in _FACEBOOK and word[0].isupper() and _NAME_WORD_RE.match(text, handle.end())
        )
        ok = _handle_like(word) or (not common and bool(full_name) and _invited(text, start))
    if not ok:
        return None
    stop = handle.end()
    if name in _FACEBOOK and word[0].isupper() and (kind == "strong" or _invited(text, start)):
        for _ in range(2):  # "Jean Tremblay", "Marie-Ève Roy"
            more = _NAME_WORD_RE.match(text, stop)
            if more is None or more[0].strip().lower() in _NOT_HANDLES:
                break
            stop = more.end()
    return Finding("social", handle.start(), stop)


def _handle_before(text: str, start: int, members: Collection[str]) -> Finding | None:
    """A handle-shaped word just before "sur insta", "on IG": "ajoute bibi22 sur snap"."""
    link = _ON_NETWORK_RE.search(text, max(0, start - 16), start)
    if link is None:
        return None
    handle = _HANDLE_END_RE.search(text, max(0, link.start() - 64), link.start())
    if handle is None or not _handle_like(handle[0]) or username_key(handle[0]) in members:
        return None
    return Finding("social", handle.start(), handle.end())


def _in_word(text: str, start: int, glue: str) -> bool:
    """Whether ``text[start]`` goes on from a word (or from one of the ``glue`` characters)."""
    before = text[start - 1] if start else " "
    return before.isalnum() or before == "_" or before in glue


def _invited(text: str, start: int) -> bool:
    """Whether the network's name at ``start`` follows "ajoute-moi sur", "add me on"..."""
    return _INVITE_RE.search(text, max(0, start - 48), start) is not None


def _handle_like(word: str) -> bool:
    """A handle's shape: letters with digits, '_' or an inner '.', and not a size."""
    if len(word) < 3 or word.isdigit() or _SIZE_LIKE_RE.fullmatch(word):
        return False
    if not any(c.isalpha() for c in word):
        return False
    return any(c.isdigit() for c in word) or "_" in word or "." in word.strip(".")


def _ends_clause(text: str, pos: int) -> bool:
    return _CLAUSE_END_RE.match(text, pos) is not None


def _near(text: str, at: int, stop: int, start: int, end: int) -> bool:
    """The @name at ``text[at:stop]`` and the network's name at ``text[start:end]`` go together."""
    if 0 <= at - end <= _NEAR:
        gap = text[end:at]
    elif 0 <= start - stop <= _NEAR:
        gap = text[stop:start]
    else:
        return False
    return _SENTENCE_END_RE.search(gap) is None
