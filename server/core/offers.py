"""Price negotiations on a listing (R5, R6, R7): who may answer, which prices, until when.

A negotiation is between one buyer and the seller of one listing. It opens with a
price: the buyer's offer (R5, only where the seller switched offers on) or the
seller's offer to a member who liked the listing (R6, at least 10 % off). It is
open while that price waits for an answer; the party who *received* it may accept,
decline or counter it, the party who *sent* it may only withdraw it. A counter is
a new price: the turn passes and the 72-hour clock starts again (R7). Nothing
here reads a clock, stores or sends anything: each function takes ``now_ms`` and
returns the negotiation as it should become, or raises ``ParleyError``.

Prices are positive ``int`` minor units in the listing's currency (never a float,
never a bool). A counter moves toward agreement: strictly between the buyer's last
price (0 before any) and the seller's last price (the item price before any).

A refused action is checked in this order, so each refusal has one code:
``bad_request`` (the amount), ``forbidden`` (not a party), ``offer_closed``,
``offer_expired`` (at or after the deadline, swept or not), ``not_your_turn``,
``price_out_of_range``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final, Literal

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Listing, ListingId, UserId

OFFER_TTL_MS: Final = 72 * 3600 * 1000  # R7: how long a price waits for an answer
MAX_RECIPIENTS: Final = 20  # R6: likers reached by one offer, "all" included


class OfferState(StrEnum):
    open = "open"  # a price waits for an answer
    accepted = "accepted"  # the last price is agreed: the buyer goes to checkout
    declined = "declined"
    withdrawn = "withdrawn"  # its sender took the last price back
    expired = "expired"  # R7: no answer within the ttl
    item_sold = "item_sold"  # the listing sold (to anyone) while it was open


class Party(StrEnum):
    buyer = "buyer"
    seller = "seller"


class Role(StrEnum):
    """A party's place relative to the price waiting for an answer."""

    receiver = "receiver"
    sender = "sender"


class OfferAction(StrEnum):
    accept = "accept"
    decline = "decline"
    counter = "counter"
    withdraw = "withdraw"


# The life cycle, (state, role of the actor, action) -> next state:
#
# - Only an open negotiation moves; every other state is final (``offer_closed``).
# - The receiver of the last price accepts it, declines it, or counters with a
#   price of their own: the negotiation stays open, the turn passes, the clock
#   restarts.
# - The sender of the last price may only withdraw it.
# - Anything else on an open negotiation is ``not_your_turn``.
#
# Two more ways out need no actor: ``expire`` at the deadline and
# ``close_item_sold`` when the listing sells; both only from ``open``.
TRANSITIONS: Final[Mapping[tuple[OfferState, Role, OfferAction], OfferState]] = {
    (OfferState.open, Role.receiver, OfferAction.accept): OfferState.accepted,
    (OfferState.open, Role.receiver, OfferAction.decline): OfferState.declined,
    (OfferState.open, Role.receiver, OfferAction.counter): OfferState.open,
    (OfferState.open, Role.sender, OfferAction.withdraw): OfferState.withdrawn,
}

# What the parties are told of each change (``notice_kind``).
NOTICE_KINDS: Final[Mapping[OfferState, str]] = {
    OfferState.open: "offer_countered",
    OfferState.accepted: "offer_accepted",
    OfferState.declined: "offer_declined",
    OfferState.withdrawn: "offer_withdrawn",
    OfferState.expired: "offer_expired",
    OfferState.item_sold: "offer_item_sold",
}


@dataclass(frozen=True, slots=True)
class PriceStep:
    by: Party
    amount: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class Negotiation:
    id: str
    listing_id: ListingId
    seller_id: UserId
    buyer_id: UserId
    currency: str
    item_price: int  # the listing's price when the negotiation opened
    state: OfferState
    prices: tuple[PriceStep, ...]  # every price sent, oldest first; the last one is current
    expires_at_ms: int | None  # the current price's deadline; None once closed
    origin: Party  # who sent the first price
    updated_ms: int
    version: int  # 1 when opened, +1 on every change: the store's compare-and-set
    ended_by: Party | None = None  # who closed it; None when open, expired or item_sold

    def __post_init__(self) -> None:
        if not self.prices:
            raise ValueError("a negotiation has at least one price")
        if (self.state is OfferState.open) != (self.expires_at_ms is not None):
            raise ValueError("an open negotiation, and only one, has a deadline")

    @property
    def current(self) -> PriceStep:
        return self.prices[-1]

    @property
    def turn(self) -> Party | None:
        """The party who may accept, decline or counter; None once closed."""
        if self.state is not OfferState.open:
            return None
        return _other(self.current.by)

    @property
    def agreed_price(self) -> int | None:
        return self.current.amount if self.state is OfferState.accepted else None


@dataclass(frozen=True, slots=True)
class Skipped:
    user_id: UserId
    reason: Literal["offer_exists", "not_a_liker", "own_listing"]


@dataclass(frozen=True, slots=True)
class LikersPlan:
    """An offer to likers (R6): the negotiations to open and who was left out, and why."""

    listing_id: ListingId
    amount: int
    create: tuple[UserId, ...]  # one ``seller_offer`` each, in the order asked
    skipped: tuple[Skipped, ...]


# Opening.


def make_offer(
    *,
    offer_id: str,
    listing: Listing,
    buyer_id: UserId,
    amount: object,
    now_ms: int,
    ttl_ms: int = OFFER_TTL_MS,
) -> Negotiation:
    """A buyer's first price (R5): below the item price, where offers are switched on.

    The caller checks first that the buyer has no open negotiation on the listing
    (``check_no_open_offer``).
    """
    price = _check_amount(amount)
    if buyer_id == listing.seller_id:
        raise ParleyError(ErrorCode.forbidden, "a seller makes no offer on their own listing")
    _check_active(listing)
    if not listing.offers_enabled:
        raise ParleyError(ErrorCode.offers_disabled, "the seller takes no offers on this listing")
    if price >= listing.price.amount:
        raise _out_of_range(0, listing.price.amount)
    return _opened(offer_id, listing, buyer_id, Party.buyer, price, now_ms, ttl_ms)


def plan_offer_to_likers(
    *,
    listing: Listing,
    actor_id: UserId,
    amount: object,
    to: Sequence[UserId] | Literal["all"],
    likers: Sequence[UserId],
    open_buyers: Collection[UserId],
) -> LikersPlan:
    """Who gets the seller's price (R6), the 10 % rule and the 20-recipient bound checked.

    ``likers`` are the members who favourited the listing, most recent first;
    ``"all"`` means the first ``MAX_RECIPIENTS`` of them. ``open_buyers`` are the
    members who already have an open negotiation on the listing: they are skipped,
    as are chosen members who don't like it and the seller. A member named twice
    counts once.
    """
    price = _check_amount(amount)
    if to == "all":
        chosen = list(dict.fromkeys(likers))[:MAX_RECIPIENTS]
    elif isinstance(to, str):
        raise ParleyError(ErrorCode.bad_request, 'recipients are a list of members, or "all"')
    else:
        chosen = list(dict.fromkeys(to))
        if not chosen:
            raise ParleyError(ErrorCode.bad_request, "an offer to likers needs a recipient")
        if len(chosen) > MAX_RECIPIENTS:
            raise ParleyError(
                ErrorCode.too_many_recipients,
                f"an offer reaches at most {MAX_RECIPIENTS} likers at once",
                {"max": MAX_RECIPIENTS},
            )
    if actor_id != listing.seller_id:
        raise ParleyError(ErrorCode.forbidden, "only the seller offers a price to likers")
    _check_active(listing)
    _check_liker_discount(listing.price.amount, price)
    liked = set(likers)
    create: list[UserId] = []
    skipped: list[Skipped] = []
    for user_id in chosen:
        if user_id == listing.seller_id:
            skipped.append(Skipped(user_id, "own_listing"))
        elif user_id not in liked:
            skipped.append(Skipped(user_id, "not_a_liker"))
        elif user_id in open_buyers:
            skipped.append(Skipped(user_id, "offer_exists"))
        else:
            create.append(user_id)
    return LikersPlan(listing.id, price, tuple(create), tuple(skipped))


def seller_offer(
    *,
    offer_id: str,
    listing: Listing,
    buyer_id: UserId,
    amount: object,
    now_ms: int,
    ttl_ms: int = OFFER_TTL_MS,
) -> Negotiation:
    """One negotiation of a ``LikersPlan``: the seller sent the first price, the buyer answers."""
    price = _check_amount(amount)
    if buyer_id == listing.seller_id:
        raise ParleyError(ErrorCode.forbidden, "a seller makes no offer to themself")
    _check_active(listing)
    _check_liker_discount(listing.price.amount, price)
    return _opened(offer_id, listing, buyer_id, Party.seller, price, now_ms, ttl_ms)


def check_no_open_offer(existing: Negotiation | None, *, now_ms: int) -> None:
    """Refuse a second open negotiation for one buyer on one listing.

    ``existing`` is the buyer's latest negotiation on the listing, if any. One past
    its deadline no longer counts: store ``expire(existing, now_ms)`` before the new one.
    """
    if existing is not None and is_open_at(existing, now_ms):
        raise ParleyError(
            ErrorCode.offer_exists,
            "there is already an open offer between you on this listing",
            {"offer_id": existing.id},
        )


# Answering.


def respond(
    neg: Negotiation,
    *,
    actor_id: UserId,
    action: OfferAction | str,
    amount: object = None,
    now_ms: int,
    ttl_ms: int = OFFER_TTL_MS,
) -> Negotiation:
    """``actor_id`` accepts, declines, counters or withdraws the current price.

    A counter carries ``amount``; the other actions carry none.
    """
    try:
        action = OfferAction(action)
    except ValueError:
        raise ParleyError(ErrorCode.bad_request, "no such offer action") from None
    price: int | None = None
    if action is OfferAction.counter:
        price = _check_amount(amount)
    elif amount is not None:
        raise ParleyError(ErrorCode.bad_request, f"{action} takes no amount")
    party = party_of(neg, actor_id)
    if party is None:
        raise ParleyError(ErrorCode.forbidden, "only the buyer and the seller take part")
    if neg.state is not OfferState.open:
        raise ParleyError(
            ErrorCode.offer_closed,
            f"this offer is already {neg.state}",
            {"state": str(neg.state)},
        )
    deadline = _deadline(neg)
    if now_ms >= deadline:
        raise ParleyError(
            ErrorCode.offer_expired, "this offer expired unanswered", {"expires_at": deadline}
        )
    role = Role.sender if party is neg.current.by else Role.receiver
    after = TRANSITIONS.get((neg.state, role, action))
    if after is None:
        turn = str(_other(neg.current.by))
        why = (
            f"the {turn} answers this price; you may only withdraw it"
            if role is Role.sender
            else "you received this price: accept, decline or counter it"
        )
        raise ParleyError(ErrorCode.not_your_turn, why, {"turn": turn})
    if price is not None:
        low, high = counter_bounds(neg)
        if not low < price < high:
            raise _out_of_range(low, high)
        _check_ttl(ttl_ms)
        step = PriceStep(party, price, now_ms)
        return _changed(neg, now_ms, prices=(*neg.prices, step), expires_at_ms=now_ms + ttl_ms)
    return _changed(neg, now_ms, state=after, expires_at_ms=None, ended_by=party)


def counter_bounds(neg: Negotiation) -> tuple[int, int]:
    """The open interval a counter must land in: (buyer's last price, seller's last price)."""
    return _last_price(neg, Party.buyer), _last_price(neg, Party.seller)


# Closing without an actor.


def expire(neg: Negotiation, now_ms: int) -> Negotiation | None:
    """The negotiation expired, if open and ``now_ms`` is at or past its deadline; else None.

    It ends at its deadline (``updated_ms``), however late the sweep comes.
    """
    if neg.state is not OfferState.open or now_ms < _deadline(neg):
        return None
    return _changed(neg, _deadline(neg), state=OfferState.expired, expires_at_ms=None)


def close_item_sold(neg: Negotiation, now_ms: int) -> Negotiation | None:
    """Close an open negotiation because the item sold; None if it was already closed.

    One already past its deadline expired before the sale: it is closed as expired.
    """
    if neg.state is not OfferState.open:
        return None
    expired = expire(neg, now_ms)
    if expired is not None:
        return expired
    return _changed(neg, now_ms, state=OfferState.item_sold, expires_at_ms=None)


# Reading.


def is_open_at(neg: Negotiation, now_ms: int) -> bool:
    """Open and before its deadline: a price that can still be answered."""
    return neg.state is OfferState.open and now_ms < _deadline(neg)


def party_of(neg: Negotiation, user_id: str) -> Party | None:
    if user_id == neg.buyer_id:
        return Party.buyer
    if user_id == neg.seller_id:
        return Party.seller
    return None


def discount_percent(item_price: int, price: int) -> int:
    """The discount in whole percent, rounded down (0 for a free item or no discount).

    Rounded down so that a price is never shown as a bigger saving than it is, and an
    offer to likers (at least 10 % off, R6) always reads 10 or more.
    """
    if item_price <= 0 or price >= item_price:
        return 0
    return (item_price - price) * 100 // item_price


def to_wire(
    neg: Negotiation, viewer: UserId | None, *, now_ms: int | None = None
) -> dict[str, Any]:
    """The negotiation as a client sees it. With ``now_ms``, one past its deadline reads
    as expired even before the sweep stored it so."""
    if now_ms is not None:
        neg = expire(neg, now_ms) or neg
    turn = neg.turn
    return {
        "id": neg.id,
        "listing": neg.listing_id,
        "seller": neg.seller_id,
        "buyer": neg.buyer_id,
        "currency": neg.currency,
        "item_price": neg.item_price,
        "price": neg.current.amount,
        "discount_percent": discount_percent(neg.item_price, neg.current.amount),
        "state": str(neg.state),
        "turn": None if turn is None else str(turn),
        "your_turn": turn is not None and viewer is not None and party_of(neg, viewer) is turn,
        "expires_at": neg.expires_at_ms,
        "history": [{"by": str(s.by), "amount": s.amount, "at": s.at_ms} for s in neg.prices],
        "origin": str(neg.origin),
        "ended_by": None if neg.ended_by is None else str(neg.ended_by),
        "updated_at": neg.updated_ms,
        "version": neg.version,
    }


def notice_kind(after: Negotiation) -> str:
    """The notification kind for the change that gave ``after`` its version."""
    return "offer_received" if after.version == 1 else NOTICE_KINDS[after.state]


def actor_of(neg: Negotiation) -> Party | None:
    """Who made the change that gave ``neg`` its version: the sender of a new or
    countered price, the party who accepted, declined or withdrew, or nobody
    (expiry, a sale). Lets a change be told from the stored negotiation alone."""
    if neg.version == 1 or neg.state is OfferState.open:
        return neg.current.by
    return neg.ended_by


def recipients_of(neg: Negotiation, actor: Party | None) -> tuple[UserId, ...]:
    """Who is told: the other party of an action, both parties of expiry or a sale."""
    if actor is Party.buyer:
        return (neg.seller_id,)
    if actor is Party.seller:
        return (neg.buyer_id,)
    return (neg.buyer_id, neg.seller_id)


# The rules' pieces.


def _check_amount(amount: object) -> int:
    # type() rather than isinstance(): True is an int to Python, not a price.
    if type(amount) is not int or amount <= 0:
        raise ParleyError(
            ErrorCode.bad_request, "an amount is a positive whole number of minor units"
        )
    return amount


def _check_active(listing: Listing) -> None:
    if listing.status != "active":
        raise ParleyError(
            ErrorCode.listing_unavailable,
            f"this listing is {listing.status}: it takes no offer",
            {"status": listing.status},
        )


def _check_liker_discount(item_price: int, price: int) -> None:
    # R6: at least 10 % off, in integers: 10 * price <= 9 * item_price.
    if 10 * price > 9 * item_price:
        raise ParleyError(
            ErrorCode.discount_too_small,
            "an offer to likers takes at least 10 % off the item price",
            {"max_amount": 9 * item_price // 10},
        )


def _check_ttl(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError("ttl_ms must be positive")  # a setting, not a member's input


def _out_of_range(low: int, high: int) -> ParleyError:
    return ParleyError(
        ErrorCode.price_out_of_range,
        f"the price must be more than {low} and less than {high}",
        {"min_exclusive": low, "max_exclusive": high},
    )


def _last_price(neg: Negotiation, party: Party) -> int:
    for step in reversed(neg.prices):
        if step.by is party:
            return step.amount
    return neg.item_price if party is Party.seller else 0


def _deadline(neg: Negotiation) -> int:
    if neg.expires_at_ms is None:
        raise ValueError("a closed negotiation has no deadline")
    return neg.expires_at_ms


def _other(party: Party) -> Party:
    return Party.seller if party is Party.buyer else Party.buyer


def _opened(
    offer_id: str,
    listing: Listing,
    buyer_id: UserId,
    by: Party,
    price: int,
    now_ms: int,
    ttl_ms: int,
) -> Negotiation:
    _check_ttl(ttl_ms)
    return Negotiation(
        id=offer_id,
        listing_id=listing.id,
        seller_id=listing.seller_id,
        buyer_id=buyer_id,
        currency=listing.price.currency,
        item_price=listing.price.amount,
        state=OfferState.open,
        prices=(PriceStep(by, price, now_ms),),
        expires_at_ms=now_ms + ttl_ms,
        origin=by,
        updated_ms=now_ms,
        version=1,
    )


def _changed(neg: Negotiation, now_ms: int, **changes: Any) -> Negotiation:
    return replace(neg, updated_ms=now_ms, version=neg.version + 1, **changes)
