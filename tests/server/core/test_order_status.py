"""Order status messages (R9): every status in both languages, carriers and their
tracking links, returns with reasons, and the reports that are refused."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import ORDER_STATUSES
from parley.server.core.order_status import (
    CARRIERS,
    LOCALES,
    StatusReport,
    check_report,
    status_data,
    status_text,
    tracking_url,
)


def test_r9_every_status_has_a_sentence_in_every_language() -> None:
    for status in ORDER_STATUSES:
        texts = {locale: status_text(StatusReport(status), locale) for locale in LOCALES}
        assert all(texts.values()) and texts["en"] != texts["fr-CA"], status


def test_r9_shipped_with_a_carrier_and_tracking_number_links_to_the_carrier() -> None:
    report = check_report("shipped", "1Z999AA10123456784", "ups", None)
    data = status_data(report)
    assert data["carrier"] == "ups" and data["carrier_name"] == "UPS"
    assert data["texts"]["en"] == (
        "The order has shipped with UPS. Tracking number: 1Z999AA10123456784."
    )
    assert data["texts"]["fr-CA"] == (
        "La commande a été expédiée par UPS. Numéro de suivi\u00a0: 1Z999AA10123456784."
    )
    assert data["tracking_urls"]["en"].endswith("tracknum=1Z999AA10123456784")
    assert "loc=fr_CA" in data["tracking_urls"]["fr-CA"]


def test_r9_canada_post_is_postes_canada_in_french() -> None:
    report = check_report("shipped", "7023 2100 0001 2345", "canada_post", None)
    assert "Postes Canada" in status_text(report, "fr-CA")
    assert "Canada Post" in status_text(report, "en")
    # The number's spaces are encoded, never pasted into the URL as they are.
    assert tracking_url("canada_post", "7023 2100 0001 2345").endswith("7023%202100%200001%202345")


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_r9_every_carrier_has_an_https_tracking_page_per_language(carrier: str) -> None:
    for locale in LOCALES:
        url = urlsplit(tracking_url(carrier, "AB123", locale))
        assert url.scheme == "https" and url.hostname
        assert "AB123" in url.geturl()


def test_r9_a_declined_return_says_why_in_both_languages() -> None:
    report = check_report("return_declined", None, None, "  Item   used after delivery. ")
    data = status_data(report)
    assert data["reason"] == "Item used after delivery."
    assert data["texts"]["en"] == "The return was declined. Reason: Item used after delivery."
    assert data["texts"]["fr-CA"].startswith("Le retour a été refusé. Motif\u00a0:")


def test_r9_an_accepted_return() -> None:
    data = status_data(check_report("return_accepted", None, None, None))
    assert data == {
        "type": "order_status",
        "status": "return_accepted",
        "texts": {"en": "The return was accepted.", "fr-CA": "Le retour a été accepté."},
    }


@pytest.mark.parametrize(
    ("status", "tracking", "carrier", "reason"),
    [
        ("lost", None, None, None),
        (None, None, None, None),
        ("shipped", "x", None, None),  # too short
        ("shipped", "1Z<script>", None, None),
        ("shipped", 12345, None, None),
        ("shipped", "AB1234", "pigeon", None),
        ("delivered", "AB1234", None, None),  # tracking goes with shipped
        ("return_declined", None, None, ""),
        ("return_declined", None, None, "x" * 501),
        ("delivered", None, None, "because"),  # a reason goes with returns and cancels
    ],
)
def test_r9_bad_reports_are_bad_request(
    status: object, tracking: object, carrier: object, reason: object
) -> None:
    with pytest.raises(ParleyError) as refused:
        check_report(status, tracking, carrier, reason)
    assert refused.value.code is ErrorCode.bad_request
