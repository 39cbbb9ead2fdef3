"""No contact channel in a username (R8).

A username shows beside every post of its member and is what others type after ``@``: a
name that is, or holds, a phone number, an e-mail address or an account on another network
would carry off the platform what the contact guard masks in texts. The backend's names
(``PUT /v1/users``) and the names a token seeds alike are refused with
``username_contact_details``, which names the kind. The rules:

- The name is read as a text by the contact guard, twice: as written (``joe@gmail.com``,
  ``call 514 555 0199``) and with its parts apart, ``_``, ``.`` and ``-`` read as spaces and
  letters set apart from digits (``julie_514_555_0187``, ``lea5145552661``).
- An e-mail: a part that is a mail provider (``julie.tremblay.gmail.com``, ``joe_hotmail``).
- A social account: a part that is a network's name (``snap.lea99``, ``lea_insta``), or a
  network's full name anywhere in it (``leasnapchat``). "signal", "sc" and "wa", which are
  also words or initials, count only as the guard reads them in a text.

What look-alike names are is ``mentions.username_key``'s business, not this module's.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.contact_email import PROVIDERS
from parley.server.core.contact_guard import ContactKind, find_contact_details
from parley.server.core.contact_social import NETWORK_FORMS, NETWORKS
from parley.server.core.lookalikes import drop_invisible

_PART_RE: Final = re.compile(r"[^\W_]+")
_LETTERS_DIGITS_RE: Final = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_SEPARATORS: Final = str.maketrans("_.-", "   ")
_AMBIGUOUS: Final = frozenset({"signal", "sc", "wa"})
_NETWORK_PARTS: Final = NETWORKS - _AMBIGUOUS
# Full names, long enough not to hide inside other words ("insta" is in "instant").
_NETWORK_ANYWHERE: Final = frozenset(
    name
    for name in (*_NETWORK_PARTS, *(f.replace(" ", "") for f in NETWORK_FORMS))
    if len(name) >= 6
)
_KIND_NAMES: Final = {
    "phone": "a phone number",
    "email": "an e-mail address",
    "social": "a social-media account",
}


def username_contact(name: str, *, region: str = "CA") -> ContactKind | None:
    """The kind of contact detail ``name`` is or holds, if any."""
    plain = unicodedata.normalize("NFKC", drop_invisible(name))
    apart = _LETTERS_DIGITS_RE.sub(" ", plain.translate(_SEPARATORS))
    for text in (plain, apart):
        found = find_contact_details(text, region=region)
        if found:
            return found[0].kind
    low = plain.casefold()
    parts = set(_PART_RE.findall(low))
    if not parts.isdisjoint(PROVIDERS):
        return "email"
    if not parts.isdisjoint(_NETWORK_PARTS) or any(n in low for n in _NETWORK_ANYWHERE):
        return "social"
    return None


def check_username(name: str, *, region: str = "CA") -> None:
    """Raise ``username_contact_details`` when ``name`` is or holds a contact detail."""
    kind = username_contact(name, region=region)
    if kind is not None:
        raise ParleyError(
            ErrorCode.username_contact_details,
            f"a username must not be or hold {_KIND_NAMES[kind]}: "
            "members keep contact details on the platform",
            {"kind": kind},
        )
