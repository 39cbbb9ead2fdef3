"""The words of the e-mails about an order, and of their landing page (R11, R12).

Two e-mails: the order confirmation, and the reminder of a conversation left
unread (``unread_reminder_minutes``). In fr-CA and English, as plain text: the
templates escape them (and the members' words put in them) where they go into
HTML. A member whose locale is neither French nor English reads the configured
default language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from parley.server.core.notices import SUPPORTED_LOCALES, pick_locale
from parley.server.core.roomevents import OFF_PLATFORM_DISCLAIMER, OFF_PLATFORM_DISCLAIMER_FR

Role = Literal["buyer", "seller"]
LinkProblem = Literal["invalid", "expired", "not_yours", "unavailable"]

_NBSP: Final = "\u00a0"
_LANGUAGE_RE: Final = re.compile(r"[A-Za-z]+")


def mail_locale(locale: str | None, default: str) -> str:
    """``fr-CA`` or ``en`` for a member's ``locale``; any other language reads ``default``."""
    language = _LANGUAGE_RE.match(locale.strip()) if locale else None
    if language is not None and language[0].lower() in ("fr", "en"):
        return pick_locale(locale)
    return pick_locale(default)


MailKind = Literal["order_confirmation", "unread_reminder"]


@dataclass(frozen=True, slots=True)
class OrderMailWords:
    """One language's e-mail about an order, for one kind and role.

    ``subject`` takes ``{order}`` and ``{title}``, ``intro`` takes ``{name}``
    (the counterpart's username); all are filled with plain text.
    """

    lang: str
    colon: str  # between a label and its value: French puts a space before it
    subject: str
    heading: str
    intro: str
    item_label: str
    order_label: str
    counterpart_label: str
    button: str
    link_fallback: str  # before the bare URL, for mail readers without buttons
    personal_link: str
    disclaimer: str
    footer: str
    unknown_item: str


@dataclass(frozen=True, slots=True)
class _Common:
    lang: str
    colon: str
    item_label: str
    order_label: str
    counterpart_labels: dict[Role, str]  # by the reader's role: who the other party is
    button: str
    link_fallback: str
    personal_link: str
    disclaimer: str
    footer: str
    unknown_item: str


_COMMON: Final = {
    "en": _Common(
        lang="en",
        colon=": ",
        item_label="Item",
        order_label="Order number",
        counterpart_labels={"buyer": "Seller", "seller": "Buyer"},
        button="Open the conversation",
        link_fallback="Open the conversation:",
        personal_link=(
            "This link is yours alone: please don't forward it. Once it has expired, "
            "open the conversation from “My orders” in the app."
        ),
        disclaimer=OFF_PLATFORM_DISCLAIMER + " Keep your messages and payments on the platform.",
        footer="You receive this e-mail because of an order on the marketplace.",
        unknown_item="your item",
    ),
    "fr-CA": _Common(
        lang="fr-CA",
        colon=f"{_NBSP}: ",
        item_label="Article",
        order_label="Numéro de commande",
        counterpart_labels={"buyer": "Vendeur", "seller": "Acheteur"},
        button="Ouvrir la conversation",
        link_fallback=f"Ouvrir la conversation{_NBSP}:",
        personal_link=(
            f"Ce lien est à vous seul{_NBSP}: ne le transférez pas. Une fois expiré, ouvrez "
            f"la conversation depuis «{_NBSP}Mes commandes{_NBSP}» dans l'application."
        ),
        disclaimer=OFF_PLATFORM_DISCLAIMER_FR
        + " Gardez vos messages et vos paiements sur la plateforme.",
        footer="Vous recevez ce courriel en raison d'une commande sur la plateforme.",
        unknown_item="votre article",
    ),
}

# (subject, heading, intro) by locale, kind and the reader's role.
_TEXTS: Final[dict[str, dict[tuple[MailKind, Role], tuple[str, str, str]]]] = {
    "en": {
        ("order_confirmation", "buyer"): (
            "Order {order} confirmed: {title}",
            "Your order is confirmed",
            "Thank you for your purchase. Your private conversation with the seller is open: "
            "use it to confirm the address, follow the shipping or discuss a return.",
        ),
        ("order_confirmation", "seller"): (
            "You sold {title} (order {order})",
            "You made a sale",
            "Your item sold. Your private conversation with the buyer is open: use it to "
            "confirm the address, give the tracking number or discuss a return.",
        ),
        ("unread_reminder", "buyer"): (
            "Unread messages about {title} (order {order})",
            "You have unread messages",
            "The seller, @{name}, wrote to you about your order and is waiting for your answer.",
        ),
        ("unread_reminder", "seller"): (
            "Unread messages about {title} (order {order})",
            "You have unread messages",
            "The buyer, @{name}, wrote to you about their order and is waiting for your answer.",
        ),
    },
    "fr-CA": {
        ("order_confirmation", "buyer"): (
            f"Commande {{order}} confirmée{_NBSP}: {{title}}",
            "Votre commande est confirmée",
            f"Merci pour votre achat. Votre conversation privée avec le vendeur est "
            f"ouverte{_NBSP}: utilisez-la pour confirmer l'adresse, suivre la livraison ou "
            "discuter d'un retour.",
        ),
        ("order_confirmation", "seller"): (
            "Vous avez vendu {title} (commande {order})",
            "Vous avez fait une vente",
            f"Votre article est vendu. Votre conversation privée avec l'acheteur est "
            f"ouverte{_NBSP}: utilisez-la pour confirmer l'adresse, donner le numéro de suivi "
            "ou discuter d'un retour.",
        ),
        ("unread_reminder", "buyer"): (
            "Messages non lus au sujet de {title} (commande {order})",
            "Vous avez des messages non lus",
            "Le vendeur, @{name}, vous a écrit au sujet de votre commande et attend votre réponse.",
        ),
        ("unread_reminder", "seller"): (
            "Messages non lus au sujet de {title} (commande {order})",
            "Vous avez des messages non lus",
            "L'acheteur, @{name}, vous a écrit au sujet de sa commande et attend votre réponse.",
        ),
    },
}


def order_mail_words(locale: str, kind: MailKind, role: Role) -> OrderMailWords:
    """The e-mail's words in ``locale`` (one of ``SUPPORTED_LOCALES``) for the reader's role."""
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"no words for locale {locale!r}")
    common = _COMMON[locale]
    subject, heading, intro = _TEXTS[locale][kind, role]
    return OrderMailWords(
        lang=common.lang,
        colon=common.colon,
        subject=subject,
        heading=heading,
        intro=intro,
        item_label=common.item_label,
        order_label=common.order_label,
        counterpart_label=common.counterpart_labels[role],
        button=common.button,
        link_fallback=common.link_fallback,
        personal_link=common.personal_link,
        disclaimer=common.disclaimer,
        footer=common.footer,
        unknown_item=common.unknown_item,
    )


@dataclass(frozen=True, slots=True)
class LandingWords:
    """One language's landing page: the conversation opening, or why it does not."""

    lang: str
    title: str
    opening: str  # {title}: the listing's title
    order_line: str  # {order}
    open_app: str
    disclaimer: str
    problems: dict[LinkProblem, str]
    what_to_do: str
    with_line: str  # {name}: the other party's username
    member: str  # the other party, when the store no longer knows them
    needs_script: str


LANDING_WORDS: Final = {
    "en": LandingWords(
        lang="en",
        title="Your conversation",
        opening="Opening your private conversation about “{title}”…",
        order_line="Order number: {order}",
        open_app="Open the app",
        disclaimer=OFF_PLATFORM_DISCLAIMER,
        problems={
            "invalid": "This link is not valid.",
            "expired": "This link has expired.",
            "not_yours": "This link does not open a conversation of yours.",
            "unavailable": "The conversation cannot be opened right now. Try again in a moment.",
        },
        what_to_do="Open the conversation from “My orders” in the app.",
        with_line="With @{name}",
        member="a member",
        needs_script=(
            "This conversation needs JavaScript. You can also open it from “My orders” in the app."
        ),
    ),
    "fr-CA": LandingWords(
        lang="fr-CA",
        title="Votre conversation",
        opening=f"Ouverture de votre conversation privée au sujet de «{_NBSP}{{title}}{_NBSP}»…",
        order_line=f"Numéro de commande{_NBSP}: {{order}}",
        open_app="Ouvrir l'application",
        disclaimer=OFF_PLATFORM_DISCLAIMER_FR,
        problems={
            "invalid": "Ce lien n'est pas valide.",
            "expired": "Ce lien a expiré.",
            "not_yours": "Ce lien n'ouvre pas une de vos conversations.",
            "unavailable": (
                "La conversation ne peut pas être ouverte pour le moment. "
                "Réessayez dans un instant."
            ),
        },
        what_to_do=(
            f"Ouvrez la conversation depuis «{_NBSP}Mes commandes{_NBSP}» dans l'application."
        ),
        with_line="Avec @{name}",
        member="un membre",
        needs_script=(
            "Cette conversation a besoin de JavaScript. Vous pouvez aussi l'ouvrir depuis "
            f"«{_NBSP}Mes commandes{_NBSP}» dans l'application."
        ),
    ),
}
