"""The words of a notification: a localized title and body for push gateways.

Notifications are stored as structured payloads (``{"kind": "mention", ...}``); this module
renders one in fr-CA or English. Members' words (names, excerpts, listing titles) are put in
as plain text, shortened so that a title stays within about 100 characters. A payload this
version doesn't know, or one missing its optional fields, still renders: a notification that
cannot be shown is worse than a plain one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

SUPPORTED_LOCALES: Final = ("fr-CA", "en")

_NAME_LIMIT: Final = 32  # an author's name inside a title
_LISTING_TITLE_LIMIT: Final = 40  # a listing's title inside a title or a body
_EXCERPT_LIMIT: Final = 140  # the member's words quoted in a body
_FIELD_LIMIT: Final = 64  # a carrier's name or a tracking number
_NBSP: Final = "\u00a0"  # French puts one inside « » and before ':'

# "fr", "fr-CA", "FR_ca", "fr_CA.UTF-8", "fr@euro": the language is what comes first.
_LANGUAGE_RE: Final = re.compile(r"[A-Za-z]+")


def pick_locale(locale: str | None) -> str:
    """The supported locale for a member's ``locale``: any French is fr-CA, the rest English."""
    language = _LANGUAGE_RE.match(locale.strip()) if locale else None
    if language is not None and language[0].lower() == "fr":
        return "fr-CA"
    return "en"


def excerpt(text: str, limit: int = 140) -> str:
    """``text`` on one line, cut after a whole word with "…" when longer than ``limit``.

    A word too long to keep (half the room or more) is cut in the middle instead, so a long
    URL doesn't leave an excerpt of a few letters. The result is never longer than ``limit``.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    room = limit - 1  # one character is the "…"
    space = flat.rfind(" ", 0, room + 1)
    if space >= room // 2:
        kept = flat[:space]
    else:
        kept = flat[:room]
        # Don't leave an accent typed as a separate mark without its letter.
        while kept and unicodedata.combining(flat[len(kept)]):
            kept = kept[:-1]
    return kept.rstrip(" ,;:.-\u2013\u2014") + "…"  # "Bonjour.…" reads as a typo


@dataclass(frozen=True, slots=True)
class NoticeText:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class _Phrases:
    """One language's sentences. ``{name}``, ``{listing}``... are filled with plain text."""

    someone: str
    open_to_read: str
    generic_title: str
    generic_body: str
    mention_title: str
    mention_title_on: str
    order_opened_title: str
    order_opened_with: Mapping[str, str]  # by the reader's role in the order
    order_opened_about: str
    order_opened_body: str
    order_message_title: str
    order_status_title: str
    order_status: Mapping[str, str]  # by status
    order_status_unknown: str
    shipped_with: str
    tracking_number: str
    quoted: str
    offer_titles: Mapping[str, str]  # by kind: offer_received, offer_countered...
    offer_price: str  # "{price}" on "{listing}"
    offer_by: str


_PHRASES: Final = {
    "en": _Phrases(
        someone="Someone",
        open_to_read="Open the conversation to read it.",
        generic_title="New notification",
        generic_body="Open the app to see it.",
        mention_title="{name} mentioned you",
        mention_title_on="{name} mentioned you on {listing}",
        order_opened_title="Order confirmed",
        order_opened_with={"buyer": " with the seller", "seller": " with the buyer"},
        order_opened_about=" about {listing}",
        order_opened_body="Your private conversation{with_whom}{about} is open.",
        order_message_title="New message from {name}",
        order_status_title="Order update",
        order_status={
            "created": "Your order was created.",
            "shipped": "Your order has shipped.",
            "delivered": "Your order was delivered.",
            "return_requested": "A return was requested for your order.",
            "return_accepted": "The return was accepted.",
            "return_declined": "The return was declined.",
            "completed": "Your order is complete.",
            "cancelled": "Your order was cancelled.",
        },
        order_status_unknown="Your order was updated.",
        shipped_with="Your order has shipped with {carrier}.",
        tracking_number=" Tracking number: {number}.",
        quoted="“{text}”",
        offer_titles={
            "offer_received": "New offer from {name}",
            "offer_countered": "{name} made a counter-offer",
            "offer_accepted": "{name} accepted the offer",
            "offer_declined": "{name} declined the offer",
            "offer_withdrawn": "{name} withdrew the offer",
            "offer_expired": "An offer expired",
            "offer_item_sold": "The item was sold",
        },
        offer_price="{price} for {listing}",
        offer_by="an item",
    ),
    "fr-CA": _Phrases(
        someone="Quelqu'un",
        open_to_read="Ouvrez la conversation pour le lire.",
        generic_title="Nouvelle notification",
        generic_body="Ouvrez l'application pour la consulter.",
        # The present tense needs no agreement with the reader's gender.
        mention_title="{name} vous mentionne",
        mention_title_on="{name} vous mentionne sur {listing}",
        order_opened_title="Commande confirmée",
        order_opened_with={"buyer": " avec le vendeur", "seller": " avec l'acheteur"},
        order_opened_about=" au sujet de {listing}",
        order_opened_body="Votre conversation privée{with_whom}{about} est ouverte.",
        order_message_title="Nouveau message de {name}",
        order_status_title="Mise à jour de la commande",
        order_status={
            "created": "Votre commande a été créée.",
            "shipped": "Votre commande a été expédiée.",
            "delivered": "Votre commande a été livrée.",
            "return_requested": "Un retour a été demandé pour votre commande.",
            "return_accepted": "Le retour a été accepté.",
            "return_declined": "Le retour a été refusé.",
            "completed": "Votre commande est terminée.",
            "cancelled": "Votre commande a été annulée.",
        },
        order_status_unknown="Votre commande a été mise à jour.",
        shipped_with="Votre commande a été expédiée par {carrier}.",
        tracking_number=f" Numéro de suivi{_NBSP}: {{number}}.",
        quoted=f"«{_NBSP}{{text}}{_NBSP}»",
        offer_titles={
            "offer_received": "Nouvelle offre de {name}",
            "offer_countered": "{name} a fait une contre-offre",
            "offer_accepted": "{name} a accepté l'offre",
            "offer_declined": "{name} a refusé l'offre",
            "offer_withdrawn": "{name} a retiré l'offre",
            "offer_expired": "Une offre a expiré",
            "offer_item_sold": "L'article a été vendu",
        },
        offer_price="{price} pour {listing}",
        offer_by="un article",
    ),
}


def _text(payload: Mapping[str, Any], key: str, limit: int) -> str | None:
    """A string field, on one line and shortened; ``None`` when absent, blank or not text."""
    value = payload.get(key)
    if not isinstance(value, str):
        return None
    return excerpt(value, limit) or None


def _author_name(payload: Mapping[str, Any], phrases: _Phrases) -> str:
    author = payload.get("author")
    name = _text(author, "name", _NAME_LIMIT) if isinstance(author, Mapping) else None
    return name or phrases.someone


def _mention(payload: Mapping[str, Any], phrases: _Phrases) -> NoticeText:
    name = _author_name(payload, phrases)
    listing = _text(payload, "listing_title", _LISTING_TITLE_LIMIT)
    if listing is None:
        title = phrases.mention_title.format(name=name)
    else:
        quoted = phrases.quoted.format(text=listing)
        title = phrases.mention_title_on.format(name=name, listing=quoted)
    body = _text(payload, "excerpt", _EXCERPT_LIMIT) or phrases.open_to_read
    return NoticeText(title, body)


def _order_opened(payload: Mapping[str, Any], phrases: _Phrases) -> NoticeText:
    role = payload.get("role")
    with_whom = phrases.order_opened_with.get(role, "") if isinstance(role, str) else ""
    listing = _text(payload, "listing_title", _LISTING_TITLE_LIMIT)
    about = ""
    if listing is not None:
        about = phrases.order_opened_about.format(listing=phrases.quoted.format(text=listing))
    body = phrases.order_opened_body.format(with_whom=with_whom, about=about)
    return NoticeText(phrases.order_opened_title, body)


def _order_message(payload: Mapping[str, Any], phrases: _Phrases) -> NoticeText:
    title = phrases.order_message_title.format(name=_author_name(payload, phrases))
    body = _text(payload, "excerpt", _EXCERPT_LIMIT) or phrases.open_to_read
    return NoticeText(title, body)


def _order_status(payload: Mapping[str, Any], phrases: _Phrases) -> NoticeText:
    status = payload.get("status")
    status = status if isinstance(status, str) else ""
    carrier = _text(payload, "carrier", _FIELD_LIMIT)
    if status == "shipped" and carrier is not None:
        body = phrases.shipped_with.format(carrier=carrier)
    else:
        body = phrases.order_status.get(status, phrases.order_status_unknown)
    number = _text(payload, "tracking_number", _FIELD_LIMIT)
    if number is not None:
        body += phrases.tracking_number.format(number=number)
    return NoticeText(phrases.order_status_title, body)


# Currencies written without minor units; every other one has two.
_ZERO_DECIMAL: Final = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})
_SYMBOLS: Final = {"CAD": "$", "USD": "$", "EUR": "€", "GBP": "£"}


def format_price(amount: int, currency: str, locale: str | None) -> str:
    """``amount`` minor units as members read it: ``$12.50`` in English, ``12,50 $`` in French."""
    french = pick_locale(locale) == "fr-CA"
    if currency in _ZERO_DECIMAL:
        number = f"{amount:,}".replace(",", _NBSP if french else ",")
    else:
        whole, cents = divmod(abs(amount), 100)
        sign = "-" if amount < 0 else ""
        grouped = f"{whole:,}".replace(",", _NBSP if french else ",")
        number = f"{sign}{grouped}{',' if french else '.'}{cents:02d}"
    symbol = _SYMBOLS.get(currency)
    if symbol is None:
        return f"{number}{_NBSP}{currency}"
    return f"{number}{_NBSP}{symbol}" if french else f"{symbol}{number}"


def _offer(payload: Mapping[str, Any], phrases: _Phrases, locale: str | None) -> NoticeText:
    kind = str(payload.get("kind"))
    title = phrases.offer_titles.get(kind, phrases.generic_title)
    title = title.format(name=_author_name(payload, phrases))
    listing = _text(payload, "listing_title", _LISTING_TITLE_LIMIT)
    listing_text = phrases.offer_by if listing is None else phrases.quoted.format(text=listing)
    amount, currency = payload.get("amount"), payload.get("currency")
    if type(amount) is not int or not isinstance(currency, str):
        return NoticeText(title, phrases.generic_body)
    price = format_price(amount, currency[:3], locale)
    return NoticeText(title, phrases.offer_price.format(price=price, listing=listing_text))


# The moderators' notices (docs/moderation.md): the title says what happened, the
# body is their statement of reasons, already in the member's language.
_MODERATION_TITLES: Final = {
    "en": {
        "message_removed": "Your comment was removed",
        "member_restricted": "Your account is restricted",
    },
    "fr-CA": {
        "message_removed": "Votre commentaire a été retiré",
        "member_restricted": "Votre compte est restreint",
    },
}


def _moderation(payload: Mapping[str, Any], language: str) -> NoticeText:
    titles = _MODERATION_TITLES[language]
    action = payload.get("action")
    title = titles.get(action, titles["message_removed"]) if isinstance(action, str) else ""
    statement = _text(payload, "statement", 2 * _EXCERPT_LIMIT)
    phrases = _PHRASES[language]
    return NoticeText(title or phrases.generic_title, statement or phrases.generic_body)


def _generic(payload: Mapping[str, Any], phrases: _Phrases) -> NoticeText:
    return NoticeText(phrases.generic_title, phrases.generic_body)


OFFER_KINDS: Final = frozenset(_PHRASES["en"].offer_titles)

_RENDERERS: Final = {
    "mention": _mention,
    "order_opened": _order_opened,
    "order_message": _order_message,
    "order_status": _order_status,
}


def render_notice(payload: Mapping[str, Any], locale: str | None) -> NoticeText:
    """The title and body of a notification payload, in the member's language."""
    phrases = _PHRASES[pick_locale(locale)]
    kind = payload.get("kind")
    if isinstance(kind, str) and kind in OFFER_KINDS:
        return _offer(payload, phrases, locale)
    if kind == "moderation":
        return _moderation(payload, pick_locale(locale))
    render = _RENDERERS.get(kind, _generic) if isinstance(kind, str) else _generic
    return render(payload, phrases)
