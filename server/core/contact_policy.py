"""What a room does with contact details in a member's text (R8, R12).

``contact_guard`` finds e-mail addresses, phone numbers and social handles;
this applies the room kind's policy to what it found, before anything is
stored:

- ``mask``    (default) each detail's characters become ``MASK_CHAR``; the
              text keeps its length, so every other index (mentions) holds,
              and the original is not kept anywhere;
- ``reject``  the post or edit is refused with ``contact_details``, naming the
              kinds found, and nothing is stored;
- ``off``     the text is stored as typed.

The notice says why, in the member's language: deals made off the platform
are not covered by buyer protection.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.contact_guard import Finding, find_contact_details, mask_contact_details
from parley.server.core.notices import pick_locale

Policy = Literal["mask", "reject", "off"]


@dataclass(frozen=True, slots=True)
class Guarded:
    text: str  # what is stored
    masked: tuple[Finding, ...] = ()  # what was masked in it

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds masked, once each, in text order."""
        return tuple(dict.fromkeys(f.kind for f in self.masked))


def guard_text(text: str, policy: str, *, region: str, members: Collection[str] = ()) -> Guarded:
    """Apply ``policy`` to ``text``; raise ``contact_details`` under ``reject``."""
    if policy == "off":
        return Guarded(text)
    findings = find_contact_details(text, region=region, members=members)
    if not findings:
        return Guarded(text)
    if policy == "reject":
        kinds = list(dict.fromkeys(f.kind for f in findings))
        raise ParleyError(
            ErrorCode.contact_details,
            f"this room does not take {_names(kinds, 'en')}: keep contact details on the "
            "platform; transactions made outside it are not covered by buyer protection",
            {"kinds": kinds},
        )
    return Guarded(mask_contact_details(text, findings), tuple(findings))


_KIND_NAMES: Final = {
    "en": {
        "email": "an e-mail address",
        "phone": "a phone number",
        "social": "a social-media account",
    },
    "fr-CA": {
        "email": "une adresse courriel",
        "phone": "un numéro de téléphone",
        "social": "un compte de réseau social",
    },
}
_NOTICE: Final = {
    "en": (
        "We hid {what} in your message: members don't need to share contact details. "
        "Transactions made outside the platform are not covered by buyer protection."
    ),
    "fr-CA": (
        "Nous avons masqué {what} dans votre message\u00a0: pas besoin d'échanger vos "
        "coordonnées. Les transactions conclues hors de la plateforme ne sont pas "
        "couvertes par la protection des acheteurs."
    ),
}


def _names(kinds: Sequence[str], locale: str) -> str:
    names = [_KIND_NAMES[locale].get(kind, kind) for kind in kinds]
    if len(names) == 1:
        return names[0]
    joiner = " et " if locale == "fr-CA" else " and "
    return ", ".join(names[:-1]) + joiner + names[-1]


def contact_notice(kinds: Sequence[str], locale: str | None) -> str:
    """Why the text was masked, in the member's language (fr-CA or en)."""
    lang = pick_locale(locale)
    return _NOTICE[lang].format(what=_names(kinds, lang))
