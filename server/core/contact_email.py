"""E-mail addresses in members' texts (R8), plain or disguised.

``contact_guard`` runs ``find_emails`` when its cheap look saw an ``@`` or a mail word, and
makes the ``(start, end)`` spans it yields into findings. The rules:

``name@domain.tld`` and its disguises: ``[at]``, ``(at)``, ``[@]``, ``arobase``,
spaces around ``@`` and ``.``, ``[dot]``, ``(.)``, ``dot``/``point`` as words, letters
spaced out around an ``@`` (``j e a n @ g m a i l . c o m``). The address runs from the
local part to the last label that can end it: any TLD after a plain ``name@domain.tld``,
a known TLD (``com``, ``ca``, ``fr``...) after a disguised dot, or a mail-only provider
(``gmail``, ``hotmail``...) with no TLD. The English word ``at`` counts before a provider
or before a disguised dot and a known TLD (``jean at monsite dot ca``), never before a
plain ``site.ca`` ("available at simons.ca" is a shop) nor after a common word ("look at
this dot com"); ``chez`` and ``(a)`` count only before a provider ("chez Videotron" is a
shop). ``@`` with a space on one side only is a mention, unless a provider follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final, NamedTuple

from parley.server.core.contact_social import NOT_HANDLES, word_set

# Mail providers; the first ones are nothing else, so they make an address without a TLD
# ("jean at gmail"), where "chez Videotron" is a shop.
_MAIL_SERVICES: Final = word_set("gmail hotmail ymail protonmail icloud gmx")
# The cheap look in contact_guard reads them too.
PROVIDERS: Final = _MAIL_SERVICES | word_set("outlook yahoo videotron sympatico aol yandex cogeco")
_TLDS: Final = word_set(
    "com ca fr net org info biz io co me us uk be ch qc edu gov gouv app dev xyz email"
)

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


def find_emails(text: str, *, words: bool) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` of the addresses in ``text``; ``words``: read the word forms
    (``at``, ``arobase``, ``[at]``...) too, not only ``@``."""
    yield from _addresses(text, words=words)
    if " @ " in text and _SPACED_OUT_RE.search(text):
        view, where = _closed_up(text)
        for start, end in _addresses(view, words=False):
            yield where[start], where[end - 1] + 1


def _addresses(text: str, *, words: bool) -> Iterator[tuple[int, int]]:
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


def _address(text: str, at_start: int, at_end: int, form: str) -> tuple[int, int] | None:
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
        if form in ("at", "chez") and (first is None or first[0].lower() in NOT_HANDLES):
            return None  # "bought it at simons dot ca"
    domain, space_after = _domain(text, at_end)
    if form in ("at", "chez") and domain.labels and domain.labels[0] in NOT_HANDLES:
        return None  # "look at this dot com"
    kept = _labels_kept(form, domain, space_before, space_after) if domain.labels else 0
    return (start, domain.ends[kept - 1]) if kept else None


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
    provider = labels[0] in PROVIDERS
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


# A provider's name, a link and a name: "gmail: julie.tremblay88", "mon gmail c'est julie88",
# "my hotmail is lea_qc99". The name is the address's own part: it is masked, the provider
# shown. After ":" or "=" any name but a common word; after "is", "est" or "c'est" a name
# shaped like one (digits, "_" or an inner "."), so that "mon gmail est plein" stays.
_MAIL_NAME_RE: Final = re.compile(
    rf"""(?<![\w.@])(?a:(?i:{"|".join(sorted(PROVIDERS, key=len, reverse=True))}))(?!\w)
    (?:(?P<strong>{_SP}*(?:=>|->|[:=]){_SP}*)
      |{_SP}+(?i:c['\u2019]est|cest|is|est|it['\u2019]s){_SP}+)
    (?P<name>[\w+\-](?:[\w+\-]|\.(?=[\w+\-]))*)""",
    re.X,
)


def find_mail_names(text: str) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` of the names given after a mail provider's name in ``text``."""
    for m in _MAIL_NAME_RE.finditer(text):
        name = m["name"]
        if len(name) < 3 or name.lower() in NOT_HANDLES or name.isdigit():
            continue
        shaped = any(c.isdigit() for c in name) or "_" in name or "." in name.strip(".")
        if m["strong"] is not None or shaped:
            yield m.start("name"), m.end("name")
