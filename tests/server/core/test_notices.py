"""Notification texts for push gateways: every kind in fr-CA and English, the member's locale
picked, members' words shortened, and payloads from a newer version still readable."""

from __future__ import annotations

from typing import Any

import pytest

from parley.server.core.mentions import MAX_USERNAME
from parley.server.core.model import ORDER_STATUSES
from parley.server.core.notices import (
    SUPPORTED_LOCALES,
    NoticeText,
    excerpt,
    pick_locale,
    render_notice,
)

NBSP = "\u00a0"
MENTION = {
    "kind": "mention",
    "room": "listing:L1",
    "seq": 3,
    "author": {"id": "u1", "name": "alice"},
    "excerpt": "@zoé this coat would suit you",
}
ORDER_OPENED = {
    "kind": "order_opened",
    "order_id": "O1",
    "room": "order:O1",
    "listing_id": "L1",
    "listing_title": "Wool coat",
    "role": "buyer",
}
ORDER_MESSAGE = {
    "kind": "order_message",
    "order_id": "O1",
    "room": "order:O1",
    "seq": 4,
    "author": {"id": "u2", "name": "sam"},
    "excerpt": "Shipped this morning!",
}
ORDER_STATUS = {"kind": "order_status", "order_id": "O1", "room": "order:O1", "status": "shipped"}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "fr-CA"),
        ("fr-CA", "fr-CA"),
        ("fr-FR", "fr-CA"),
        ("fr-BE", "fr-CA"),
        ("FR_ca", "fr-CA"),
        ("fr_CA.UTF-8", "fr-CA"),
        (" fr-CA ", "fr-CA"),
        ("en", "en"),
        ("en-CA", "en"),
        ("en_US", "en"),
        ("es-MX", "en"),
        ("fra", "en"),
        ("french", "en"),
        ("", "en"),
        ("   ", "en"),
        ("-fr", "en"),
        (None, "en"),
    ],
)
def test_the_member_locale_is_one_we_support(locale: str | None, expected: str) -> None:
    assert pick_locale(locale) == expected
    assert expected in SUPPORTED_LOCALES


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Still available?", 140, "Still available?"),
        ("", 140, ""),
        ("   \n\t ", 140, ""),
        ("  Is it\n\nstill\tavailable?  ", 140, "Is it still available?"),
        ("abcde", 5, "abcde"),  # exactly the limit: whole
        ("abcdef", 5, "abcd…"),  # one word, no space to cut at
        ("Bonjour à tous", 10, "Bonjour à…"),
        ("Bonjour à tous", 9, "Bonjour…"),
        ("Bonjour, ça va?", 11, "Bonjour…"),  # no dangling comma before "…"
        ("Très belle veste en laine", 19, "Très belle veste…"),
        ("Très belle veste en laine", 20, "Très belle veste en…"),
        ("Élégant manteau d'hiver", 12, "Élégant…"),
        ("word https://example.com/a/very/long/path", 20, "word https://exampl…"),
        ("e\u0301te\u0301 chaud", 4, "e\u0301t…"),  # no accent cut from its letter
        ("anything", 1, "…"),
    ],
)
def test_excerpt(text: str, limit: int, expected: str) -> None:
    assert excerpt(text, limit) == expected
    assert len(excerpt(text, limit)) <= limit


def test_excerpt_has_a_default_limit_of_140() -> None:
    long_text = "mot " * 100
    shortened = excerpt(long_text)
    assert len(shortened) <= 140
    assert shortened.endswith("mot…")
    assert excerpt("x" * 140) == "x" * 140


def test_excerpt_refuses_a_limit_with_no_room() -> None:
    with pytest.raises(ValueError):
        excerpt("text", 0)


@pytest.mark.parametrize(
    ("payload", "locale", "expected"),
    [
        (
            MENTION,
            "en",
            NoticeText("alice mentioned you", "@zoé this coat would suit you"),
        ),
        (
            MENTION,
            "fr-CA",
            NoticeText("alice vous mentionne", "@zoé this coat would suit you"),
        ),
        (
            {**MENTION, "listing_title": "Wool coat"},
            "en",
            NoticeText("alice mentioned you on “Wool coat”", "@zoé this coat would suit you"),
        ),
        (
            {**MENTION, "listing_title": "Manteau de laine"},
            "fr",
            NoticeText(
                f"alice vous mentionne sur «{NBSP}Manteau de laine{NBSP}»",
                "@zoé this coat would suit you",
            ),
        ),
        (
            ORDER_OPENED,
            "en",
            NoticeText(
                "Order confirmed",
                "Your private conversation with the seller about “Wool coat” is open.",
            ),
        ),
        (
            ORDER_OPENED,
            "fr-CA",
            NoticeText(
                "Commande confirmée",
                "Votre conversation privée avec le vendeur au sujet de "
                f"«{NBSP}Wool coat{NBSP}» est ouverte.",
            ),
        ),
        (
            {**ORDER_OPENED, "role": "seller"},
            "en",
            NoticeText(
                "Order confirmed",
                "Your private conversation with the buyer about “Wool coat” is open.",
            ),
        ),
        (
            {**ORDER_OPENED, "role": "seller"},
            "fr-CA",
            NoticeText(
                "Commande confirmée",
                "Votre conversation privée avec l'acheteur au sujet de "
                f"«{NBSP}Wool coat{NBSP}» est ouverte.",
            ),
        ),
        (
            ORDER_MESSAGE,
            "en",
            NoticeText("New message from sam", "Shipped this morning!"),
        ),
        (
            ORDER_MESSAGE,
            "fr-CA",
            NoticeText("Nouveau message de sam", "Shipped this morning!"),
        ),
        (
            ORDER_STATUS,
            "en",
            NoticeText("Order update", "Your order has shipped."),
        ),
        (
            ORDER_STATUS,
            "fr-CA",
            NoticeText("Mise à jour de la commande", "Votre commande a été expédiée."),
        ),
        (
            {"kind": "price_drop", "listing_id": "F1"},
            "en",
            NoticeText("New notification", "Open the app to see it."),
        ),
        (
            {"kind": "price_drop", "listing_id": "F1"},
            "fr-CA",
            NoticeText("Nouvelle notification", "Ouvrez l'application pour la consulter."),
        ),
        (
            {
                "kind": "offer_received",
                "offer_id": "F1",
                "author": {"id": "u7", "name": "marie"},
                "listing_title": "Manteau de laine",
                "amount": 123456,
                "currency": "CAD",
            },
            "en",
            NoticeText("New offer from marie", "$1,234.56 for “Manteau de laine”"),
        ),
        (
            {
                "kind": "offer_countered",
                "offer_id": "F1",
                "author": {"id": "u7", "name": "marie"},
                "listing_title": "Manteau de laine",
                "amount": 123456,
                "currency": "CAD",
            },
            "fr-CA",
            NoticeText(
                "marie a fait une contre-offre",
                "1\u00a0234,56\u00a0$ pour «\u00a0Manteau de laine\u00a0»",
            ),
        ),
        (
            {"kind": "offer_expired", "offer_id": "F1", "amount": 500, "currency": "EUR"},
            "en",
            NoticeText("An offer expired", "€5.00 for an item"),
        ),
        (
            {"kind": "offer_item_sold", "offer_id": "F1", "amount": "500", "currency": "CAD"},
            "fr-CA",
            NoticeText("L'article a été vendu", "Ouvrez l'application pour la consulter."),
        ),
    ],
)
def test_every_kind_in_every_locale(
    payload: dict[str, Any], locale: str, expected: NoticeText
) -> None:
    assert render_notice(payload, locale) == expected


@pytest.mark.parametrize(
    ("status", "tracking", "english", "french"),
    [
        ("created", None, "Your order was created.", "Votre commande a été créée."),
        (
            "shipped",
            "1Z999AA10123456784",
            "Your order has shipped. Tracking number: 1Z999AA10123456784.",
            f"Votre commande a été expédiée. Numéro de suivi{NBSP}: 1Z999AA10123456784.",
        ),
        ("delivered", None, "Your order was delivered.", "Votre commande a été livrée."),
        (
            "return_requested",
            None,
            "A return was requested for your order.",
            "Un retour a été demandé pour votre commande.",
        ),
        (
            "return_accepted",
            "LX123456789CA",
            "The return was accepted. Tracking number: LX123456789CA.",
            f"Le retour a été accepté. Numéro de suivi{NBSP}: LX123456789CA.",
        ),
        ("return_declined", None, "The return was declined.", "Le retour a été refusé."),
        ("completed", None, "Your order is complete.", "Votre commande est terminée."),
        ("cancelled", None, "Your order was cancelled.", "Votre commande a été annulée."),
        ("lost_in_transit", None, "Your order was updated.", "Votre commande a été mise à jour."),
        (None, None, "Your order was updated.", "Votre commande a été mise à jour."),
        (7, None, "Your order was updated.", "Votre commande a été mise à jour."),
    ],
)
def test_r9_order_status_in_both_languages(
    status: object, tracking: str | None, english: str, french: str
) -> None:
    payload: dict[str, Any] = {"kind": "order_status", "order_id": "O1", "room": "order:O1"}
    if status is not None:
        payload["status"] = status
    if tracking is not None:
        payload["tracking_number"] = tracking
    assert render_notice(payload, "en") == NoticeText("Order update", english)
    assert render_notice(payload, "fr-CA") == NoticeText("Mise à jour de la commande", french)


def test_r9_every_order_status_of_the_model_has_its_own_words() -> None:
    for status in ORDER_STATUSES:
        for locale in SUPPORTED_LOCALES:
            body = render_notice({**ORDER_STATUS, "status": status}, locale).body
            assert body not in ("Your order was updated.", "Votre commande a été mise à jour.")


def test_r9_shipped_names_the_carrier_when_given() -> None:
    payload = {**ORDER_STATUS, "carrier": "Canada Post", "tracking_number": "7023210039414604"}
    assert render_notice(payload, "en").body == (
        "Your order has shipped with Canada Post. Tracking number: 7023210039414604."
    )
    assert render_notice({**payload, "carrier": "Postes Canada"}, "fr-CA").body == (
        f"Votre commande a été expédiée par Postes Canada. Numéro de suivi{NBSP}: 7023210039414604."
    )


@pytest.mark.parametrize(
    ("payload", "english", "french"),
    [
        (
            {"kind": "mention"},
            NoticeText("Someone mentioned you", "Open the conversation to read it."),
            NoticeText("Quelqu'un vous mentionne", "Ouvrez la conversation pour le lire."),
        ),
        (
            {"kind": "mention", "author": "alice", "excerpt": 5, "listing_title": "  "},
            NoticeText("Someone mentioned you", "Open the conversation to read it."),
            NoticeText("Quelqu'un vous mentionne", "Ouvrez la conversation pour le lire."),
        ),
        (
            {"kind": "order_message", "author": {"id": "u2"}, "excerpt": ""},
            NoticeText("New message from Someone", "Open the conversation to read it."),
            NoticeText("Nouveau message de Quelqu'un", "Ouvrez la conversation pour le lire."),
        ),
        (
            {"kind": "order_opened", "order_id": "O1"},
            NoticeText("Order confirmed", "Your private conversation is open."),
            NoticeText("Commande confirmée", "Votre conversation privée est ouverte."),
        ),
        (
            {"kind": "order_opened", "role": "admin", "listing_title": "Wool coat"},
            NoticeText("Order confirmed", "Your private conversation about “Wool coat” is open."),
            NoticeText(
                "Commande confirmée",
                f"Votre conversation privée au sujet de «{NBSP}Wool coat{NBSP}» est ouverte.",
            ),
        ),
        (
            {},
            NoticeText("New notification", "Open the app to see it."),
            NoticeText("Nouvelle notification", "Ouvrez l'application pour la consulter."),
        ),
        (
            {"kind": ["mention"]},
            NoticeText("New notification", "Open the app to see it."),
            NoticeText("Nouvelle notification", "Ouvrez l'application pour la consulter."),
        ),
    ],
)
def test_missing_or_odd_fields_still_render(
    payload: dict[str, Any], english: NoticeText, french: NoticeText
) -> None:
    assert render_notice(payload, "en") == english
    assert render_notice(payload, "fr-CA") == french


def test_members_words_are_plain_text_on_one_line() -> None:
    payload = {
        **MENTION,
        "author": {"id": "u1", "name": "<b>alice</b>"},
        "excerpt": "Is it\nstill {available}?\t<script>",
        "listing_title": "Coat {0} & {name}",
    }
    notice = render_notice(payload, "en")
    assert notice.title == "<b>alice</b> mentioned you on “Coat {0} & {name}”"
    assert notice.body == "Is it still {available}? <script>"


LONGEST_NAME = "N" * MAX_USERNAME
LONG_TITLE = "Manteau d'hiver en laine bouillie doublé, taille M, porté deux fois " * 3
LONG_WORDS = "Bonjour, " + "est-ce que le manteau est toujours disponible? " * 20


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize(
    "payload",
    [
        {**MENTION, "author": {"id": "u1", "name": LONGEST_NAME}, "listing_title": LONG_TITLE},
        {**MENTION, "excerpt": LONG_WORDS},
        {**ORDER_OPENED, "listing_title": LONG_TITLE},
        {**ORDER_MESSAGE, "author": {"id": "u2", "name": LONGEST_NAME}, "excerpt": LONG_WORDS},
        {**ORDER_STATUS, "carrier": "C" * 500, "tracking_number": "9" * 500},
    ],
    ids=["mention", "mention-excerpt", "order_opened", "order_message", "order_status"],
)
def test_long_member_words_are_shortened(payload: dict[str, Any], locale: str) -> None:
    notice = render_notice(payload, locale)
    assert len(notice.title) <= 100
    assert len(notice.body) <= 300
    assert "…" in notice.title + notice.body
