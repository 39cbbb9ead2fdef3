"""Order status messages (R9): what the backend's reports say inside an order room.

A status change becomes a system message whose ``data`` carries the status, the
carrier and its tracking link when the order shipped, a return's reason, and
the sentence in each supported language (``texts``), so each party's widget
shows it in their own language; ``text`` is the English one, for clients that
don't look further.

Carriers are those a Canadian marketplace ships with. A tracking number is put
into the carrier's public tracking page URL percent-encoded, never as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import ORDER_STATUSES

ENDED: Final = frozenset({"completed", "cancelled"})  # the order is over (room may go read-only)
TRACKING_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{2,38}[A-Za-z0-9]")
MAX_REASON: Final = 500  # characters of a return's reason


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    tracking_url: str  # with {number} and {lang} ("en" or "fr")


CARRIERS: Final = {
    "canada_post": Carrier(
        "Canada Post",
        "https://www.canadapost-postescanada.ca/track-reperage/{lang}#/search?searchFor={number}",
    ),
    "purolator": Carrier(
        "Purolator", "https://www.purolator.com/{lang}/shipping/tracker?pin={number}"
    ),
    "ups": Carrier("UPS", "https://www.ups.com/track?loc={lang}_CA&tracknum={number}"),
    "fedex": Carrier("FedEx", "https://www.fedex.com/fedextrack/?trknbr={number}"),
    "dhl": Carrier("DHL", "https://www.dhl.com/ca-{lang}/home/tracking.html?tracking-id={number}"),
    "canpar": Carrier(
        "Canpar Express", "https://www.canpar.com/{lang}/tracking/track.htm?barcode={number}"
    ),
    "intelcom": Carrier(
        "Intelcom", "https://intelcom.ca/{lang}/track-your-package/?tracking-id={number}"
    ),
}
_CARRIER_NAMES_FR: Final = {"canada_post": "Postes Canada"}

_TEXTS: Final = {
    "en": {
        "created": "The order was created.",
        "shipped": "The order has shipped.",
        "shipped_with": "The order has shipped with {carrier}.",
        "delivered": "The order was delivered.",
        "return_requested": "A return was requested.",
        "return_accepted": "The return was accepted.",
        "return_declined": "The return was declined.",
        "completed": "The order is complete.",
        "cancelled": "The order was cancelled.",
        "tracking": " Tracking number: {number}.",
        "reason": " Reason: {reason}",
    },
    "fr-CA": {
        "created": "La commande a été créée.",
        "shipped": "La commande a été expédiée.",
        "shipped_with": "La commande a été expédiée par {carrier}.",
        "delivered": "La commande a été livrée.",
        "return_requested": "Un retour a été demandé.",
        "return_accepted": "Le retour a été accepté.",
        "return_declined": "Le retour a été refusé.",
        "completed": "La commande est terminée.",
        "cancelled": "La commande a été annulée.",
        "tracking": " Numéro de suivi\u00a0: {number}.",
        "reason": " Motif\u00a0: {reason}",
    },
}
LOCALES: Final = tuple(_TEXTS)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What the backend reported, checked."""

    status: str
    tracking_number: str | None = None
    carrier: str | None = None  # a key of CARRIERS
    reason: str | None = None


def check_report(
    status: object, tracking_number: object, carrier: object, reason: object
) -> StatusReport:
    """Validate a report; each mistake names its field (``bad_request``)."""
    if not isinstance(status, str) or status not in ORDER_STATUSES:
        raise _bad(f"status must be one of {', '.join(sorted(ORDER_STATUSES))}")
    if tracking_number is not None and (
        not isinstance(tracking_number, str) or TRACKING_RE.fullmatch(tracking_number) is None
    ):
        raise _bad("tracking_number must be 4..40 letters, digits, spaces or dashes")
    if carrier is not None and (not isinstance(carrier, str) or carrier not in CARRIERS):
        raise _bad(f"carrier must be one of {', '.join(sorted(CARRIERS))}")
    if (carrier is not None or tracking_number is not None) and status != "shipped":
        raise _bad("carrier and tracking_number go with status shipped")
    if reason is not None:
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise _bad(f"reason must be a text of 1..{MAX_REASON} characters")
        if status not in ("return_requested", "return_declined", "cancelled"):
            raise _bad("reason goes with return_requested, return_declined or cancelled")
        reason = " ".join(reason.split())
    return StatusReport(status, tracking_number, carrier, reason)


def tracking_url(carrier: str, number: str, locale: str = "en") -> str:
    lang = "fr" if locale.lower().startswith("fr") else "en"
    return CARRIERS[carrier].tracking_url.format(lang=lang, number=quote(number, safe=""))


def carrier_name(carrier: str, locale: str) -> str:
    if locale.lower().startswith("fr"):
        return _CARRIER_NAMES_FR.get(carrier, CARRIERS[carrier].name)
    return CARRIERS[carrier].name


def status_text(report: StatusReport, locale: str) -> str:
    """The system message's sentence in ``locale`` (``en`` or ``fr-CA``)."""
    phrases = _TEXTS[locale]
    if report.status == "shipped" and report.carrier is not None:
        text = phrases["shipped_with"].format(carrier=carrier_name(report.carrier, locale))
    else:
        text = phrases[report.status]
    if report.tracking_number is not None:
        text += phrases["tracking"].format(number=report.tracking_number)
    if report.reason is not None:
        text += phrases["reason"].format(reason=report.reason)
    return text


def status_data(report: StatusReport) -> dict[str, Any]:
    """The system message's ``data``: what widgets render, in every language."""
    data: dict[str, Any] = {"type": "order_status", "status": report.status}
    if report.carrier is not None:
        data["carrier"] = report.carrier
        data["carrier_name"] = CARRIERS[report.carrier].name
    if report.tracking_number is not None:
        data["tracking_number"] = report.tracking_number
        if report.carrier is not None:
            data["tracking_urls"] = {
                locale: tracking_url(report.carrier, report.tracking_number, locale)
                for locale in LOCALES
            }
    if report.reason is not None:
        data["reason"] = report.reason
    data["texts"] = {locale: status_text(report, locale) for locale in LOCALES}
    return data


def _bad(message: str) -> ParleyError:
    return ParleyError(ErrorCode.bad_request, message)
