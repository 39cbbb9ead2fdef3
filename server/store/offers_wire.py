"""What both backends share of negotiations: how one is stored, and the refusal
of a second open one.

A negotiation is stored as one JSON document holding every field of
``Negotiation``, prices as ``[by, amount, at_ms]`` rows, oldest first. The
backends keep a few fields beside it (state, deadline, version...) to index and
compare; the document is what every read hands back.
"""

from __future__ import annotations

from typing import Any

import orjson

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import ListingId, UserId
from parley.server.core.offers import Negotiation, OfferState, Party, PriceStep


def encode_negotiation(neg: Negotiation) -> bytes:
    return orjson.dumps(
        {
            "id": neg.id,
            "listing_id": neg.listing_id,
            "seller_id": neg.seller_id,
            "buyer_id": neg.buyer_id,
            "currency": neg.currency,
            "item_price": neg.item_price,
            "state": neg.state.value,
            "prices": [[step.by.value, step.amount, step.at_ms] for step in neg.prices],
            "expires_at_ms": neg.expires_at_ms,
            "origin": neg.origin.value,
            "updated_ms": neg.updated_ms,
            "version": neg.version,
            "ended_by": None if neg.ended_by is None else neg.ended_by.value,
        }
    )


def decode_negotiation(raw: bytes | str) -> Negotiation:
    fields: dict[str, Any] = orjson.loads(raw)
    ended_by = fields["ended_by"]
    return Negotiation(
        id=fields["id"],
        listing_id=ListingId(fields["listing_id"]),
        seller_id=UserId(fields["seller_id"]),
        buyer_id=UserId(fields["buyer_id"]),
        currency=fields["currency"],
        item_price=fields["item_price"],
        state=OfferState(fields["state"]),
        prices=tuple(PriceStep(Party(by), amount, at_ms) for by, amount, at_ms in fields["prices"]),
        expires_at_ms=fields["expires_at_ms"],
        origin=Party(fields["origin"]),
        updated_ms=fields["updated_ms"],
        version=fields["version"],
        ended_by=None if ended_by is None else Party(ended_by),
    )


def offer_exists(offer_id: str) -> ParleyError:
    """The refusal of a second open negotiation between one buyer and one listing."""
    return ParleyError(
        ErrorCode.offer_exists,
        "there is already an open offer between you on this listing",
        {"offer_id": offer_id},
    )
