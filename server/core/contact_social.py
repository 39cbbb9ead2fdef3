"""Social-media accounts in members' texts (R8): links to the networks, and handles next to
a network's name.

``contact_guard`` runs ``find_socials`` when its cheap look saw a network's name or a link,
and makes the ``(start, end)`` spans it yields into findings. The rules:

Links to the networks (``instagram.com/jean``, ``wa.me/…``, ``t.me/…``,
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
WhatsApp" alone masks nothing; "signal", "sc", "wa" and "gram" (Instagram) need a handle's
shape or an ``@``. A name of seven letters or more is also read with one letter missing or
two neighbours swapped ("instagrm", "snpachat").

A handle whose ``username_key`` is in ``members`` is never masked: a mention is R4's business.

The word-level pieces here serve the other detectors too: ``word_set``, ``NOT_HANDLES``
(common words, which the e-mail reading refuses as names) and ``in_word`` (the phone reading
refuses digits glued to a word).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator
from functools import lru_cache
from typing import Final

from parley.server.core.mentions import username_key


def word_set(words: str) -> frozenset[str]:
    """The words of ``words``, split on white space."""
    return frozenset(words.split())


# The cheap look in contact_guard reads the names of the networks.
_NAMES: Final = word_set(
    "instagram insta ig gram facebook fb messenger tiktok snapchat snap sc whatsapp whatsap "
    "watsapp watsap wapp wa telegram signal discord twitter kik wechat viber"
)


def misspellings(name: str) -> set[str]:
    """``name`` with one letter missing or two neighbours swapped: "instagrm", "snpachat"."""
    missing = {name[:i] + name[i + 1 :] for i in range(len(name))}
    swapped = {name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)}
    return (missing | swapped) - {name}


# Long names are also read misspelt by a letter; short ones would match common words.
MISSPELT: Final = {
    wrong: name
    for name in sorted(_NAMES)
    if len(name) >= 7
    for wrong in sorted(misspellings(name))
    if wrong not in _NAMES
}
NETWORKS: Final = _NAMES | MISSPELT.keys()
NETWORK_FORMS: Final = ("tik tok", "whats app")  # also written with the space
# Names that are also plain words: a handle after them needs an "@" or a handle's shape.
_AMBIGUOUS_NETWORKS: Final = frozenset({"signal", "sc", "wa", "gram"})
_FACEBOOK: Final = frozenset({"facebook", "fb", "messenger"})
# Words that are not handles: function words, chat words, and what follows "is"/"est" when
# a member talks about an account rather than gives it.
NOT_HANDLES: Final = word_set(
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

_SP: Final = r"[ \t]"

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
def _network_re(networks: frozenset[str]) -> re.Pattern[str]:
    """The names of ``networks``; what comes before them is looked at afterwards."""
    return re.compile(rf"(?a:(?i:{'|'.join(sorted(networks, key=len, reverse=True))}))(?!\w)")


_LINK_RE: Final = re.compile(
    rf"""(?P<strong>{_SP}*(?:=>|->|[:=]|→|➡\ufe0f?|»){_SP}*
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


def find_socials(
    text: str, members: Collection[str], names: frozenset[str], *, links: bool
) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` of the links to networks (when ``links``) and of the handles next
    to the names of ``names`` (regular expressions) in ``text``, but ``members``' ones."""
    if links:
        for m in _SOCIAL_URL_RE.finditer(text):
            yield m.start(), m.end()
    found = _network_re(names).finditer(text) if names else ()
    networks = [
        (m.start(), m.end(), MISSPELT.get(m[0].lower(), m[0].lower()))
        for m in found
        if not in_word(text, m.start(), ".@/")
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
                yield h.start(), h.end()


def _handle_after(
    text: str, start: int, end: int, name: str, members: Collection[str]
) -> tuple[int, int] | None:
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
    common = word.lower() in NOT_HANDLES or len(word) < 2
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
            if more is None or more[0].strip().lower() in NOT_HANDLES:
                break
            stop = more.end()
    return handle.start(), stop


def _handle_before(text: str, start: int, members: Collection[str]) -> tuple[int, int] | None:
    """A handle-shaped word just before "sur insta", "on IG": "ajoute bibi22 sur snap"."""
    link = _ON_NETWORK_RE.search(text, max(0, start - 16), start)
    if link is None:
        return None
    handle = _HANDLE_END_RE.search(text, max(0, link.start() - 64), link.start())
    if handle is None or not _handle_like(handle[0]) or username_key(handle[0]) in members:
        return None
    return handle.start(), handle.end()


def in_word(text: str, start: int, glue: str) -> bool:
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
