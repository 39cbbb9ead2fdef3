"""Ops on price negotiations: the seller's switch, offers, answers, likers (R5-R7).

Offers are structured actions between two parties, never free text (R2). The
rules are ``server.core.offers``; storing and telling are ``server.negotiations``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import (
    Likers,
    OfferMake,
    OfferRespond,
    Offers,
    OffersEnable,
    OfferToLikers,
)
from parley.server.core.model import Listing, ListingId, UserId
from parley.server.core.moderation import check_offer_not_blocked
from parley.server.core.offers import (
    MAX_RECIPIENTS,
    Negotiation,
    OfferAction,
    make_offer,
    party_of,
    plan_offer_to_likers,
    respond,
    seller_offer,
    to_wire,
)
from parley.server.negotiations import new_offer_id

if TYPE_CHECKING:
    from parley.server.hub import Conn, Hub
    from parley.server.ops import Handler

LIKERS_CHECKED: Final = 5000  # likers read to check an offer_to_likers list against
OFFERS_SCANNED: Final = 500  # negotiations read for one ``offers`` filtered by state


async def _listing(hub: Hub, listing_id: str) -> Listing:
    listing = await hub.store.get_listing(ListingId(listing_id))
    if listing is None or listing.status == "deleted":
        raise ParleyError(ErrorCode.not_found, f"no listing {listing_id}")
    return listing


def _own(listing: Listing, user_id: str) -> None:
    if listing.seller_id != user_id:
        raise ParleyError(ErrorCode.forbidden, "only the listing's seller may do this")


async def offers_enable(hub: Hub, conn: Conn, request: OffersEnable) -> dict[str, Any]:
    _own(await _listing(hub, request.listing), conn.principal.user_id)
    updated = await hub.store.set_offers_enabled(ListingId(request.listing), request.enabled)
    if updated is None:
        raise ParleyError(ErrorCode.not_found, f"no listing {request.listing}")
    return {"listing": updated.id, "offers_enabled": updated.offers_enabled}


async def offer_make(hub: Hub, conn: Conn, request: OfferMake) -> dict[str, Any]:
    me = conn.principal
    listing = await _listing(hub, request.listing)
    if listing.seller_id != me.user_id:  # make_offer refuses one's own listing itself
        blocked = await hub.store.blocked_between(me.user_id, [listing.seller_id])
        check_offer_not_blocked(bool(blocked))
    negotiation = make_offer(
        offer_id=new_offer_id(),
        listing=listing,
        buyer_id=me.user_id,
        amount=request.amount,
        now_ms=hub.negotiations.now_ms(),
        ttl_ms=hub.config.offer_ttl_ms,
    )
    created = await hub.negotiations.open(negotiation, me.name)
    return {"offer": to_wire(created, me.user_id)}


async def offer_respond(hub: Hub, conn: Conn, request: OfferRespond) -> dict[str, Any]:
    me = conn.principal
    negotiations = hub.negotiations

    def decide(current: Negotiation) -> Negotiation:
        return respond(
            current,
            actor_id=me.user_id,
            action=OfferAction(request.action),
            amount=request.amount,
            now_ms=negotiations.now_ms(),
            ttl_ms=hub.config.offer_ttl_ms,
        )

    existing = await hub.store.get_negotiation(request.offer)
    actor = None if existing is None else party_of(existing, me.user_id)
    if existing is None or actor is None:
        # Whether a negotiation between others exists is none of the asker's business.
        raise ParleyError(ErrorCode.not_found, f"no offer {request.offer}")
    changed = await negotiations.change(request.offer, decide, me.name, actor)
    assert changed is not None  # decide never says "nothing to do"
    return {"offer": to_wire(changed, me.user_id)}


async def likers(hub: Hub, conn: Conn, request: Likers) -> dict[str, Any]:
    listing = await _listing(hub, request.listing)
    _own(listing, conn.principal.user_id)
    likes = await hub.store.likers(listing.id, request.before, request.limit)
    open_by_buyer = {n.buyer_id: n.id for n in await hub.store.open_negotiations(listing.id)}
    users = [await hub.store.get_user(like.user_id) for like in likes]
    return {
        "listing": listing.id,
        "likers": [
            {
                "user_id": like.user_id,
                "name": None if user is None else user.name,
                "liked_at": like.ts,
                "open_offer": open_by_buyer.get(like.user_id),
            }
            for like, user in zip(likes, users, strict=True)
        ],
        "more": len(likes) == request.limit,
    }


async def offer_to_likers(hub: Hub, conn: Conn, request: OfferToLikers) -> dict[str, Any]:
    me = conn.principal
    listing = await _listing(hub, request.listing)
    _own(listing, me.user_id)
    wanted = MAX_RECIPIENTS if request.to is None else LIKERS_CHECKED
    likes = await hub.store.likers(listing.id, None, wanted)
    now = hub.negotiations.now_ms()
    open_buyers = {
        n.buyer_id
        for n in await hub.store.open_negotiations(listing.id)
        if n.expires_at_ms is not None and now < n.expires_at_ms
    }
    plan = plan_offer_to_likers(
        listing=listing,
        actor_id=me.user_id,
        amount=request.amount,
        to="all" if request.to is None else [UserId(u) for u in request.to],
        likers=[like.user_id for like in likes],
        open_buyers=open_buyers,
    )
    sent: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = [
        {"user_id": s.user_id, "reason": s.reason} for s in plan.skipped
    ]
    # A block either way: skipped like the others, the reason naming no side.
    blocked = await hub.store.blocked_between(me.user_id, plan.create)
    skipped += [{"user_id": b, "reason": "blocked"} for b in plan.create if b in blocked]
    for buyer_id in (b for b in plan.create if b not in blocked):
        negotiation = seller_offer(
            offer_id=new_offer_id(),
            listing=listing,
            buyer_id=buyer_id,
            amount=plan.amount,
            now_ms=now,
            ttl_ms=hub.config.offer_ttl_ms,
        )
        try:
            created = await hub.negotiations.open(negotiation, me.name)
        except ParleyError as exc:
            if exc.code is not ErrorCode.offer_exists:
                raise
            skipped.append({"user_id": buyer_id, "reason": "offer_exists"})  # a race: they offered
            continue
        sent.append({"user_id": buyer_id, "offer": to_wire(created, me.user_id)})
    return {"listing": listing.id, "sent": sent, "skipped": skipped}


async def offers(hub: Hub, conn: Conn, request: Offers) -> dict[str, Any]:
    me = conn.principal
    listing_id = None if request.listing is None else ListingId(request.listing)
    only_open = request.state == "open"
    scanned = request.limit if request.state in (None, "open") else OFFERS_SCANNED
    found = await hub.store.negotiations_of(
        me.user_id, listing_id=listing_id, open_only=only_open, limit=scanned
    )
    now = hub.negotiations.now_ms()
    views = [to_wire(n, me.user_id, now_ms=now) for n in found]
    if request.state is not None:
        views = [v for v in views if v["state"] == request.state]
    return {"offers": views[: request.limit]}


HANDLERS: Final[dict[type, Handler]] = {
    OffersEnable: offers_enable,
    OfferMake: offer_make,
    OfferRespond: offer_respond,
    Likers: likers,
    OfferToLikers: offer_to_likers,
    Offers: offers,
}
