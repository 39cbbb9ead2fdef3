"""System messages: what the backend's reports look like inside a room (R3, R9).

Each has a ``data`` object for widgets to render, with ``data.texts``: the
sentence in every language Parley speaks (``SUPPORTED_LOCALES``), so a widget
shows each member their own; ``text`` is the English one, for clients that look
no further. Order status messages (``order_status``) have the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Order
from parley.server.core.notices import SUPPORTED_LOCALES

LISTING_CHANGES: Final = frozenset({"edited", "photos_added", "price_changed", "status_changed"})
OFF_PLATFORM_DISCLAIMER: Final = (
    "Transactions made outside the platform are not covered by buyer protection."
)
OFF_PLATFORM_DISCLAIMER_FR: Final = (
    "Les transactions effectuées en dehors de la plateforme ne sont pas couvertes "
    "par la protection des acheteurs."
)

_PHRASES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "photo_added": "The seller added {count} photo.",
        "photos_added": "The seller added {count} photos.",
        "price_changed": "The seller changed the price.",
        "status_changed": "The listing's status changed.",
        "edited": "The seller edited the listing.",
        "order_opened": "Order confirmed. Use this private conversation to confirm the "
        "address, share a tracking number, discuss a return or check the order's status. "
        + OFF_PLATFORM_DISCLAIMER,
    },
    "fr-CA": {
        "photo_added": "Le vendeur a ajouté {count} photo.",
        "photos_added": "Le vendeur a ajouté {count} photos.",
        "price_changed": "Le vendeur a modifié le prix.",
        "status_changed": "Le statut de l'annonce a changé.",
        "edited": "Le vendeur a modifié l'annonce.",
        "order_opened": "Commande confirmée. Utilisez cette conversation privée pour "
        "confirmer l'adresse, communiquer un numéro de suivi, discuter d'un retour ou "
        "vérifier le statut de la commande. " + OFF_PLATFORM_DISCLAIMER_FR,
    },
}


@dataclass(frozen=True, slots=True)
class SystemMessage:
    text: str  # the English sentence; ``data["texts"]`` has every language
    data: dict[str, Any]


def _said(phrase: str, data: dict[str, Any], **values: Any) -> SystemMessage:
    """The message with ``data.texts``: ``phrase`` in every supported language."""
    texts = {locale: _PHRASES[locale][phrase].format(**values) for locale in SUPPORTED_LOCALES}
    return SystemMessage(texts["en"], {**data, "texts": texts})


def listing_change(body: dict[str, Any]) -> SystemMessage:
    """R3: ``{"type": "edited" | "photos_added" | ..., "count"?: int, "fields"?: [str]}``."""
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in LISTING_CHANGES:
        raise ParleyError(
            ErrorCode.bad_request, f"type must be one of {', '.join(sorted(LISTING_CHANGES))}"
        )
    data: dict[str, Any] = {"type": f"listing_{kind}"}
    unknown = set(body) - {"type", "count", "fields", "event_id"}
    if unknown:
        raise ParleyError(ErrorCode.bad_request, f"unknown field(s): {', '.join(sorted(unknown))}")
    if kind == "photos_added":
        count = body.get("count", 1)
        if type(count) is not int or not 1 <= count <= 100:
            raise ParleyError(ErrorCode.bad_request, "count must be an integer 1..100")
        data["count"] = count
        return _said("photo_added" if count == 1 else "photos_added", data, count=count)
    fields = body.get("fields")
    if fields is not None:
        if (
            not isinstance(fields, list)
            or not all(isinstance(f, str) and 0 < len(f) <= 32 for f in fields)
            or len(fields) > 20
        ):
            raise ParleyError(ErrorCode.bad_request, "fields must be a list of short names")
        data["fields"] = fields
    return _said(kind, data)


def order_opened(order: Order) -> SystemMessage:
    """R9, R12: the first message of an order room."""
    return _said(
        "order_opened",
        {
            "type": "order_opened",
            "order_id": order.id,
            "listing_id": order.listing_id,
            "buyer_id": order.buyer_id,
            "seller_id": order.seller_id,
            "disclaimer": "off_platform_not_covered",
        },
    )
