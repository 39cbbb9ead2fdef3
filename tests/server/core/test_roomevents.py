"""System messages from the backend's reports: R3 listing changes, R9 order
status, R12 the off-platform disclaimer in the order room's first message."""

from __future__ import annotations

from typing import Any

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import ListingId, Order, OrderId, UserId
from parley.server.core.notices import SUPPORTED_LOCALES
from parley.server.core.roomevents import (
    OFF_PLATFORM_DISCLAIMER,
    OFF_PLATFORM_DISCLAIMER_FR,
    listing_change,
    order_opened,
)

ORDER = Order(OrderId("o1"), ListingId("42"), UserId("u-buyer"), UserId("u-seller"))


@pytest.mark.parametrize(
    ("body", "text", "data"),
    [
        ({"type": "edited"}, "The seller edited the listing.", {"type": "listing_edited"}),
        (
            {"type": "edited", "fields": ["title", "description"]},
            "The seller edited the listing.",
            {"type": "listing_edited", "fields": ["title", "description"]},
        ),
        (
            {"type": "photos_added"},
            "The seller added 1 photo.",
            {"type": "listing_photos_added", "count": 1},
        ),
        (
            {"type": "photos_added", "count": 3, "event_id": "evt-1"},
            "The seller added 3 photos.",
            {"type": "listing_photos_added", "count": 3},
        ),
        (
            {"type": "price_changed", "fields": ["price"]},
            "The seller changed the price.",
            {"type": "listing_price_changed", "fields": ["price"]},
        ),
        (
            {"type": "status_changed"},
            "The listing's status changed.",
            {"type": "listing_status_changed"},
        ),
    ],
)
def test_r3_listing_change_becomes_a_system_message(
    body: dict[str, Any], text: str, data: dict[str, Any]
) -> None:
    message = listing_change(body)
    assert message.text == text
    texts = message.data.pop("texts")
    assert message.data == data
    assert set(texts) == set(SUPPORTED_LOCALES) and texts["en"] == text


@pytest.mark.parametrize(
    ("body", "french"),
    [
        ({"type": "edited"}, "Le vendeur a modifié l'annonce."),
        ({"type": "photos_added"}, "Le vendeur a ajouté 1 photo."),
        ({"type": "photos_added", "count": 2}, "Le vendeur a ajouté 2 photos."),
        ({"type": "price_changed"}, "Le vendeur a modifié le prix."),
        ({"type": "status_changed"}, "Le statut de l'annonce a changé."),
    ],
)
def test_r3_listing_change_says_it_in_french_too(body: dict[str, Any], french: str) -> None:
    assert listing_change(body).data["texts"]["fr-CA"] == french


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": None},
        {"type": 5},
        {"type": "deleted"},
        {"type": "Edited"},
        {"type": "listing_edited"},
        {"type": "edited", "colour": "red"},
        {"type": "photos_added", "count": 0},
        {"type": "photos_added", "count": 101},
        {"type": "photos_added", "count": -1},
        {"type": "photos_added", "count": True},
        {"type": "photos_added", "count": "2"},
        {"type": "photos_added", "count": 2.0},
        {"type": "edited", "fields": "title"},
        {"type": "edited", "fields": [1]},
        {"type": "edited", "fields": [""]},
        {"type": "edited", "fields": ["x" * 33]},
        {"type": "edited", "fields": [f"f{i}" for i in range(21)]},
        {"type": "price_changed", "fields": {"price": 1}},
    ],
    ids=repr,
)
def test_r3_bad_listing_change_is_bad_request(body: dict[str, Any]) -> None:
    with pytest.raises(ParleyError) as info:
        listing_change(body)
    assert info.value.code is ErrorCode.bad_request


def test_r3_listing_change_limits_are_inclusive() -> None:
    assert listing_change({"type": "photos_added", "count": 100}).data["count"] == 100
    fields = ["x" * 32] * 20
    assert listing_change({"type": "edited", "fields": fields}).data["fields"] == fields


def test_r9_order_opened_names_the_order_and_its_parties() -> None:
    message = order_opened(ORDER)
    texts = message.data.pop("texts")
    assert texts["en"] == message.text
    assert texts["fr-CA"].startswith("Commande confirmée.")
    assert message.data == {
        "type": "order_opened",
        "order_id": "o1",
        "listing_id": "42",
        "buyer_id": "u-buyer",
        "seller_id": "u-seller",
        "disclaimer": "off_platform_not_covered",
    }
    for purpose in ("address", "tracking number", "return", "status"):
        assert purpose in message.text


def test_r12_order_opened_carries_the_off_platform_disclaimer_in_every_language() -> None:
    message = order_opened(ORDER)
    assert message.text.endswith(OFF_PLATFORM_DISCLAIMER)
    assert message.data["texts"]["en"].endswith(OFF_PLATFORM_DISCLAIMER)
    assert message.data["texts"]["fr-CA"].endswith(OFF_PLATFORM_DISCLAIMER_FR)
    assert "outside the platform are not covered" in OFF_PLATFORM_DISCLAIMER
    assert message.data["disclaimer"] == "off_platform_not_covered"
