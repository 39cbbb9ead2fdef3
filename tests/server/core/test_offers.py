"""Price negotiations: R5 (offers from buyers, turns), R6 (offers to likers), R7 (72 hours).

Pure and synchronous: time is a number of milliseconds passed in, 72 hours pass at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import LISTING_STATUSES, Listing, ListingId, Money, UserId
from parley.server.core.offers import (
    MAX_RECIPIENTS,
    NOTICE_KINDS,
    OFFER_TTL_MS,
    LikersPlan,
    Negotiation,
    OfferAction,
    OfferState,
    Party,
    PriceStep,
    Skipped,
    actor_of,
    check_no_open_offer,
    close_item_sold,
    counter_bounds,
    discount_percent,
    expire,
    is_open_at,
    make_offer,
    notice_kind,
    party_of,
    plan_offer_to_likers,
    recipients_of,
    respond,
    seller_offer,
    to_wire,
)

SELLER, BUYER, STRANGER = UserId("u-seller"), UserId("u-buyer"), UserId("u-stranger")
ACTORS = {"buyer": BUYER, "seller": SELLER, "stranger": STRANGER}
LISTING = Listing(ListingId("42"), SELLER, "Wool coat", Money(10_000, "CAD"), offers_enabled=True)
T0 = 1_800_000_000_000
TTL = OFFER_TTL_MS
TERMINAL = [s for s in OfferState if s is not OfferState.open]


def refused(call: Callable[[], object]) -> ParleyError:
    with pytest.raises(ParleyError) as info:
        call()
    return info.value


def buyer_offer(amount: int = 6_000, *, listing: Listing = LISTING, at: int = T0) -> Negotiation:
    return make_offer(offer_id="of1", listing=listing, buyer_id=BUYER, amount=amount, now_ms=at)


def liker_offer(amount: int = 8_000, *, listing: Listing = LISTING, at: int = T0) -> Negotiation:
    return seller_offer(offer_id="of1", listing=listing, buyer_id=BUYER, amount=amount, now_ms=at)


def act(
    neg: Negotiation, who: UserId, action: str, amount: int | None = None, *, at: int = T0 + 1
) -> Negotiation:
    return respond(neg, actor_id=who, action=action, amount=amount, now_ms=at)


def midpoint(neg: Negotiation) -> int:
    low, high = counter_bounds(neg)
    return (low + high) // 2


# The situations of the life cycle table: an open negotiation waiting on each
# side, and one negotiation in each terminal state.
def seller_turn() -> Negotiation:
    return buyer_offer(6_000)  # the buyer sent the last price


def buyer_turn() -> Negotiation:
    return act(seller_turn(), SELLER, "counter", 8_000)


SITUATIONS: dict[str, Callable[[], Negotiation]] = {
    "seller_turn": seller_turn,
    "buyer_turn": buyer_turn,
    "accepted": lambda: act(seller_turn(), SELLER, "accept"),
    "declined": lambda: act(seller_turn(), SELLER, "decline"),
    "withdrawn": lambda: act(seller_turn(), BUYER, "withdraw"),
    "expired": lambda: expire(seller_turn(), T0 + TTL) or seller_turn(),
    "item_sold": lambda: close_item_sold(seller_turn(), T0 + 5) or seller_turn(),
}

N, F = ErrorCode.not_your_turn, ErrorCode.forbidden
LIFE_CYCLE: list[tuple[str, str, str, OfferState | ErrorCode]] = [
    # An open negotiation: the receiver answers, the sender may only withdraw.
    ("seller_turn", "seller", "accept", OfferState.accepted),
    ("seller_turn", "seller", "decline", OfferState.declined),
    ("seller_turn", "seller", "counter", OfferState.open),
    ("seller_turn", "seller", "withdraw", N),
    ("seller_turn", "buyer", "accept", N),
    ("seller_turn", "buyer", "decline", N),
    ("seller_turn", "buyer", "counter", N),
    ("seller_turn", "buyer", "withdraw", OfferState.withdrawn),
    ("buyer_turn", "buyer", "accept", OfferState.accepted),
    ("buyer_turn", "buyer", "decline", OfferState.declined),
    ("buyer_turn", "buyer", "counter", OfferState.open),
    ("buyer_turn", "buyer", "withdraw", N),
    ("buyer_turn", "seller", "accept", N),
    ("buyer_turn", "seller", "decline", N),
    ("buyer_turn", "seller", "counter", N),
    ("buyer_turn", "seller", "withdraw", OfferState.withdrawn),
    *[
        (turn, "stranger", action, F)
        for turn in ("seller_turn", "buyer_turn")
        for action in OfferAction
    ],
    # A closed negotiation refuses everything: to its parties, offer_closed.
    *[
        (str(state), who, str(action), F if who == "stranger" else ErrorCode.offer_closed)
        for state in TERMINAL
        for who in ACTORS
        for action in OfferAction
    ],
]


def test_the_table_covers_every_state_actor_and_action() -> None:
    covered = {(s, who, a) for s, who, a, _ in LIFE_CYCLE}
    assert covered == {(s, who, str(a)) for s in SITUATIONS for who in ACTORS for a in OfferAction}
    assert len(LIFE_CYCLE) == len(covered)


@pytest.mark.parametrize(("situation", "who", "action", "expected"), LIFE_CYCLE)
def test_r5_life_cycle(
    situation: str, who: str, action: str, expected: OfferState | ErrorCode
) -> None:
    neg = SITUATIONS[situation]()
    amount = None
    if action == "counter":
        amount = midpoint(neg) if neg.state is OfferState.open else 5_000

    def call() -> Negotiation:
        return act(neg, ACTORS[who], action, amount, at=neg.updated_ms + 1)

    if isinstance(expected, ErrorCode):
        error = refused(call)
        assert error.code is expected
        if expected is ErrorCode.offer_closed:
            assert error.details == {"state": situation}
        if expected is ErrorCode.not_your_turn:
            assert error.details == {"turn": str(neg.turn)}
        return
    after = call()
    assert after.state is expected
    assert after.version == neg.version + 1
    if expected is OfferState.open:
        assert after.current == PriceStep(Party(who), midpoint(neg), neg.updated_ms + 1)
        assert after.turn is not neg.turn
        assert after.ended_by is None
    else:
        assert after.ended_by is Party(who)
        assert after.turn is None and after.expires_at_ms is None


# R5: offers from buyers.


def test_r5_a_buyer_offers_below_the_item_price() -> None:
    neg = buyer_offer(6_000)
    assert neg.state is OfferState.open
    assert neg.prices == (PriceStep(Party.buyer, 6_000, T0),)
    assert (neg.origin, neg.turn, neg.version) == (Party.buyer, Party.seller, 1)
    assert (neg.currency, neg.item_price, neg.expires_at_ms) == ("CAD", 10_000, T0 + TTL)
    assert (neg.listing_id, neg.seller_id, neg.buyer_id) == ("42", SELLER, BUYER)


def test_r5_only_where_the_seller_switched_offers_on() -> None:
    listing = replace(LISTING, offers_enabled=False)
    assert refused(lambda: buyer_offer(listing=listing)).code is ErrorCode.offers_disabled


def test_r5_never_on_ones_own_listing() -> None:
    error = refused(
        lambda: make_offer(
            offer_id="of1", listing=LISTING, buyer_id=SELLER, amount=6_000, now_ms=T0
        )
    )
    assert error.code is ErrorCode.forbidden


@pytest.mark.parametrize("status", sorted(LISTING_STATUSES - {"active"}))
def test_r5_never_on_a_listing_that_is_not_active(status: str) -> None:
    error = refused(lambda: buyer_offer(listing=replace(LISTING, status=status)))
    assert error.code is ErrorCode.listing_unavailable
    assert error.details == {"status": status}


@pytest.mark.parametrize("amount", [10_000, 10_001, 10**30])
def test_r5_a_first_offer_is_strictly_below_the_item_price(amount: int) -> None:
    error = refused(lambda: buyer_offer(amount))
    assert error.code is ErrorCode.price_out_of_range
    assert error.details == {"min_exclusive": 0, "max_exclusive": 10_000}


def test_r5_a_first_offer_at_the_edges() -> None:
    assert buyer_offer(9_999).current.amount == 9_999
    assert buyer_offer(1).current.amount == 1


# A price is a positive int of minor units: anything else is a malformed request.
BAD_AMOUNTS: list[Any] = [0, -1, -10_000, True, False, 1.5, 6000.0, "6000", None, [6000]]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_r5_an_amount_is_a_positive_int(amount: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: buyer_offer(amount),
        lambda: liker_offer(amount),
        lambda: act(seller_turn(), SELLER, "counter", amount),
        lambda: plan_offer_to_likers(
            listing=LISTING,
            actor_id=SELLER,
            amount=amount,
            to=[BUYER],
            likers=[BUYER],
            open_buyers=(),
        ),
    ]
    for call in calls:
        assert refused(call).code is ErrorCode.bad_request


@pytest.mark.parametrize(
    ("who", "amount", "bounds"),
    [
        # The buyer sent 6000: the seller counters between it and the item price.
        ("seller", 6_000, (6_000, 10_000)),
        ("seller", 10_000, (6_000, 10_000)),
        ("seller", 5_000, (6_000, 10_000)),
        ("seller", 12_000, (6_000, 10_000)),
    ],
)
def test_r5_a_counter_moves_toward_agreement(
    who: str, amount: int, bounds: tuple[int, int]
) -> None:
    error = refused(lambda: act(seller_turn(), ACTORS[who], "counter", amount))
    assert error.code is ErrorCode.price_out_of_range
    assert error.details == {"min_exclusive": bounds[0], "max_exclusive": bounds[1]}


def test_r5_counters_close_in_from_both_sides() -> None:
    neg = seller_turn()  # buyer 6000
    neg = act(neg, SELLER, "counter", 9_999, at=T0 + 1)  # seller: (6000, 10000)
    assert counter_bounds(neg) == (6_000, 9_999)
    neg = act(neg, BUYER, "counter", 6_001, at=T0 + 2)
    assert counter_bounds(neg) == (6_001, 9_999)
    # The buyer's own last price bounds the seller's counter from below.
    assert refused(lambda: act(neg, SELLER, "counter", 6_001, at=T0 + 3)).details == {
        "min_exclusive": 6_001,
        "max_exclusive": 9_999,
    }
    neg = act(neg, SELLER, "counter", 9_998, at=T0 + 3)
    assert [s.amount for s in neg.prices] == [6_000, 9_999, 6_001, 9_998]
    neg = act(neg, BUYER, "accept", at=T0 + 4)
    assert (neg.state, neg.agreed_price, neg.ended_by) == (OfferState.accepted, 9_998, Party.buyer)
    assert neg.version == 5


def test_r5_when_no_price_is_left_between_them_they_accept_or_decline() -> None:
    neg = act(buyer_offer(9_998), SELLER, "counter", 9_999)
    assert counter_bounds(neg) == (9_998, 9_999)
    assert refused(lambda: act(neg, BUYER, "counter", 9_999)).code is ErrorCode.price_out_of_range
    assert act(neg, BUYER, "accept").agreed_price == 9_999


@pytest.mark.parametrize(
    ("action", "amount"),
    [("counter", None), ("accept", 7_000), ("decline", 7_000), ("withdraw", 7_000)],
)
def test_r5_only_a_counter_carries_an_amount(action: str, amount: int | None) -> None:
    assert refused(lambda: act(seller_turn(), SELLER, action, amount)).code is ErrorCode.bad_request


def test_r5_an_unknown_action_is_a_bad_request() -> None:
    assert refused(lambda: act(seller_turn(), SELLER, "haggle")).code is ErrorCode.bad_request


def test_r5_one_open_negotiation_per_buyer_per_listing() -> None:
    neg = seller_turn()
    error = refused(lambda: check_no_open_offer(neg, now_ms=T0 + 1))
    assert (error.code, error.details) == (ErrorCode.offer_exists, {"offer_id": "of1"})
    check_no_open_offer(None, now_ms=T0)
    check_no_open_offer(act(neg, SELLER, "decline"), now_ms=T0 + 2)
    check_no_open_offer(neg, now_ms=T0 + TTL)  # past its deadline: expired, swept or not


def test_r5_accepting_agrees_on_the_last_price() -> None:
    neg = act(buyer_turn(), BUYER, "accept", at=T0 + 2)
    assert (neg.state, neg.agreed_price, neg.ended_by) == (OfferState.accepted, 8_000, Party.buyer)
    assert buyer_turn().agreed_price is None
    assert act(buyer_turn(), BUYER, "decline", at=T0 + 2).agreed_price is None


# R6: offers to likers.

LIKERS = [UserId(f"u-liker{i:02}") for i in range(25)]  # most recent first


def plan(
    to: Any,  # a list of members or "all"; other strings to see them refused
    *,
    amount: object = 8_000,
    likers: list[UserId] = LIKERS,
    open_buyers: tuple[UserId, ...] = (),
    actor: UserId = SELLER,
    listing: Listing = LISTING,
) -> LikersPlan:
    return plan_offer_to_likers(
        listing=listing,
        actor_id=actor,
        amount=amount,
        to=to,
        likers=likers,
        open_buyers=open_buyers,
    )


@pytest.mark.parametrize(
    ("item_price", "amount", "ok"),
    [
        (1_999, 1_799, True),
        (1_999, 1_800, False),
        (1_000, 900, True),
        (1_000, 901, False),
        (10_000, 9_000, True),
        (10_000, 9_001, False),
        (2, 1, True),
        (1_000, 1, True),
    ],
)
def test_r6_the_discount_is_at_least_ten_percent(item_price: int, amount: int, ok: bool) -> None:
    listing = replace(LISTING, price=Money(item_price, "CAD"))
    calls: list[Callable[[], object]] = [
        lambda: plan(LIKERS[:1], amount=amount, listing=listing),
        lambda: liker_offer(amount, listing=listing),
    ]
    for call in calls:
        if ok:
            call()
        else:
            error = refused(call)
            assert error.code is ErrorCode.discount_too_small
            assert error.details == {"max_amount": 9 * item_price // 10}


def test_r6_no_switch_is_needed() -> None:
    listing = replace(LISTING, offers_enabled=False)
    assert plan(LIKERS[:2], listing=listing).create == tuple(LIKERS[:2])
    assert liker_offer(listing=listing).state is OfferState.open


def test_r6_only_the_seller_of_that_listing() -> None:
    assert refused(lambda: plan(LIKERS[:1], actor=LIKERS[3])).code is ErrorCode.forbidden
    assert refused(lambda: plan("all", actor=STRANGER)).code is ErrorCode.forbidden


@pytest.mark.parametrize("status", sorted(LISTING_STATUSES - {"active"}))
def test_r6_only_on_an_active_listing(status: str) -> None:
    listing = replace(LISTING, status=status)
    assert refused(lambda: plan("all", listing=listing)).code is ErrorCode.listing_unavailable
    assert refused(lambda: liker_offer(listing=listing)).code is ErrorCode.listing_unavailable


def test_r6_twenty_recipients_at_once_not_twenty_one() -> None:
    assert MAX_RECIPIENTS == 20
    assert plan(LIKERS[:20]).create == tuple(LIKERS[:20])
    error = refused(lambda: plan(LIKERS[:21]))
    assert (error.code, error.details) == (ErrorCode.too_many_recipients, {"max": 20})


def test_r6_a_member_named_twice_counts_once() -> None:
    twice = [*LIKERS[:20], LIKERS[0]]
    assert plan(twice).create == tuple(LIKERS[:20])
    assert plan([LIKERS[1], LIKERS[1], LIKERS[2]]).create == (LIKERS[1], LIKERS[2])


@pytest.mark.parametrize("to", [[], "u-liker01", "everyone"])
def test_r6_recipients_are_a_non_empty_list_or_all(to: list[UserId] | str) -> None:
    assert refused(lambda: plan(to)).code is ErrorCode.bad_request


def test_r6_all_reaches_the_twenty_most_recent_likers() -> None:
    result = plan("all")
    assert result.create == tuple(LIKERS[:20])
    assert result.skipped == ()
    assert (result.listing_id, result.amount) == ("42", 8_000)
    assert plan("all", likers=LIKERS[:3]).create == tuple(LIKERS[:3])


def test_r6_all_with_an_open_negotiation_among_them_skips_it_without_reaching_further() -> None:
    result = plan("all", open_buyers=(LIKERS[4],))
    assert result.create == tuple(u for u in LIKERS[:20] if u != LIKERS[4])
    assert result.skipped == (Skipped(LIKERS[4], "offer_exists"),)


def test_r6_who_is_skipped_and_why() -> None:
    to = [LIKERS[0], STRANGER, SELLER, LIKERS[1], LIKERS[2], STRANGER]
    result = plan(to, likers=[*LIKERS[:3], SELLER], open_buyers=(LIKERS[1], STRANGER))
    assert result.create == (LIKERS[0], LIKERS[2])
    assert result.skipped == (
        Skipped(STRANGER, "not_a_liker"),
        Skipped(SELLER, "own_listing"),
        Skipped(LIKERS[1], "offer_exists"),
    )


def test_r6_the_seller_sent_the_first_price_so_the_buyer_answers() -> None:
    neg = liker_offer(8_000)
    assert (neg.origin, neg.turn, neg.current) == (
        Party.seller,
        Party.buyer,
        PriceStep(Party.seller, 8_000, T0),
    )
    assert counter_bounds(neg) == (0, 8_000)
    assert refused(lambda: act(neg, SELLER, "accept")).code is ErrorCode.not_your_turn
    assert act(neg, BUYER, "counter", 7_000).turn is Party.seller
    assert act(neg, SELLER, "withdraw").state is OfferState.withdrawn


def test_r6_a_seller_sends_no_offer_to_themself() -> None:
    error = refused(
        lambda: seller_offer(
            offer_id="of1", listing=LISTING, buyer_id=SELLER, amount=8_000, now_ms=T0
        )
    )
    assert error.code is ErrorCode.forbidden


# R7: 72 hours.

DEADLINE = T0 + 72 * 3600 * 1000


@pytest.mark.parametrize(
    ("who", "action"),
    [("seller", "accept"), ("seller", "decline"), ("seller", "counter"), ("buyer", "withdraw")],
)
def test_r7_an_answer_one_millisecond_before_the_deadline_counts(who: str, action: str) -> None:
    neg = seller_turn()
    assert neg.expires_at_ms == DEADLINE
    amount = 7_000 if action == "counter" else None
    assert act(neg, ACTORS[who], action, amount, at=DEADLINE - 1).version == 2  # 71:59:59.999


@pytest.mark.parametrize(
    ("who", "action"),
    [
        ("seller", "accept"),
        ("seller", "decline"),
        ("seller", "counter"),
        ("buyer", "withdraw"),
        ("buyer", "accept"),
    ],
)
@pytest.mark.parametrize("late", [0, 1, TTL])
def test_r7_an_answer_at_or_after_the_deadline_is_refused(who: str, action: str, late: int) -> None:
    amount = 7_000 if action == "counter" else None
    error = refused(lambda: act(seller_turn(), ACTORS[who], action, amount, at=DEADLINE + late))
    assert (error.code, error.details) == (ErrorCode.offer_expired, {"expires_at": DEADLINE})


def test_r7_a_counter_restarts_the_clock() -> None:
    later = T0 + 50 * 3600 * 1000
    neg = act(seller_turn(), SELLER, "counter", 8_000, at=later)
    assert neg.expires_at_ms == later + TTL
    assert act(neg, BUYER, "accept", at=DEADLINE + 1).state is OfferState.accepted
    assert act(neg, BUYER, "accept", at=later + TTL - 1).state is OfferState.accepted
    assert refused(lambda: act(neg, BUYER, "accept", at=later + TTL)).code is (
        ErrorCode.offer_expired
    )


def test_r7_expire_at_the_deadline_not_before() -> None:
    neg = seller_turn()
    assert expire(neg, DEADLINE - 1) is None
    for now in (DEADLINE, DEADLINE + 3_600_000):  # the sweep may come late
        expired = expire(neg, now)
        assert expired is not None
        assert expired.state is OfferState.expired
        assert (expired.expires_at_ms, expired.ended_by, expired.turn) == (None, None, None)
        assert (expired.version, expired.updated_ms) == (2, DEADLINE)
        assert expire(expired, now + 1) is None


def test_r7_the_ttl_is_a_setting() -> None:
    neg = make_offer(
        offer_id="of1", listing=LISTING, buyer_id=BUYER, amount=6_000, now_ms=T0, ttl_ms=1_000
    )
    assert neg.expires_at_ms == T0 + 1_000
    later = respond(neg, actor_id=SELLER, action="counter", amount=7_000, now_ms=T0 + 999, ttl_ms=5)
    assert later.expires_at_ms == T0 + 999 + 5
    with pytest.raises(ValueError):
        make_offer(offer_id="x", listing=LISTING, buyer_id=BUYER, amount=1, now_ms=T0, ttl_ms=0)


def test_r7_is_open_at_reads_the_deadline() -> None:
    neg = seller_turn()
    assert is_open_at(neg, DEADLINE - 1)
    assert not is_open_at(neg, DEADLINE)
    assert not is_open_at(act(neg, SELLER, "decline"), T0 + 2)


# When the item sells.


def test_an_open_negotiation_closes_when_the_item_sells() -> None:
    sold = close_item_sold(buyer_turn(), T0 + 10)
    assert sold is not None
    assert (sold.state, sold.ended_by, sold.expires_at_ms, sold.version) == (
        OfferState.item_sold,
        None,
        None,
        3,
    )
    assert close_item_sold(sold, T0 + 11) is None
    assert close_item_sold(act(seller_turn(), SELLER, "decline"), T0 + 11) is None


def test_r7_one_that_expired_before_the_sale_stays_expired() -> None:
    sold = close_item_sold(seller_turn(), DEADLINE + 5)
    assert sold is not None
    assert (sold.state, sold.updated_ms) == (OfferState.expired, DEADLINE)


# What clients see, and who is told.


def test_to_wire_shows_the_negotiation_to_each_viewer() -> None:
    neg = buyer_turn()
    wire = to_wire(neg, BUYER)
    assert wire == {
        "id": "of1",
        "listing": "42",
        "seller": SELLER,
        "buyer": BUYER,
        "currency": "CAD",
        "item_price": 10_000,
        "price": 8_000,
        "discount_percent": 20,
        "state": "open",
        "turn": "buyer",
        "your_turn": True,
        "expires_at": T0 + 1 + TTL,
        "history": [
            {"by": "buyer", "amount": 6_000, "at": T0},
            {"by": "seller", "amount": 8_000, "at": T0 + 1},
        ],
        "origin": "buyer",
        "ended_by": None,
        "updated_at": T0 + 1,
        "version": 2,
    }
    assert to_wire(neg, SELLER)["your_turn"] is False
    assert to_wire(neg, STRANGER)["your_turn"] is False
    assert to_wire(neg, None)["your_turn"] is False
    assert all(type(v) in (str, int, bool, list, type(None)) for v in wire.values())


def test_r7_to_wire_shows_an_unswept_negotiation_past_its_deadline_as_expired() -> None:
    neg = buyer_turn()
    assert to_wire(neg, BUYER, now_ms=neg.updated_ms + TTL - 1)["state"] == "open"
    wire = to_wire(neg, BUYER, now_ms=neg.updated_ms + TTL)
    assert (wire["state"], wire["turn"], wire["your_turn"], wire["expires_at"]) == (
        "expired",
        None,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("item_price", "price", "percent"),
    [
        (1_999, 1_799, 10),
        (1_000, 900, 10),
        (1_000, 901, 9),
        (10_000, 6_000, 40),
        (3, 1, 66),
        (10_000, 9_999, 0),
        (10_000, 10_000, 0),
        (0, 0, 0),
        (10_000, 1, 99),
    ],
)
def test_discount_percent_is_rounded_down(item_price: int, price: int, percent: int) -> None:
    assert discount_percent(item_price, price) == percent


def test_r6_an_offer_to_likers_always_reads_ten_percent_or_more() -> None:
    for item_price in range(2, 3_000):
        assert discount_percent(item_price, 9 * item_price // 10) >= 10


def test_each_change_has_its_notice_kind_and_actor() -> None:
    neg = seller_turn()
    assert (notice_kind(neg), actor_of(neg)) == ("offer_received", Party.buyer)
    changes = [
        (act(neg, SELLER, "counter", 7_000), "offer_countered", Party.seller),
        (act(neg, SELLER, "accept"), "offer_accepted", Party.seller),
        (act(neg, SELLER, "decline"), "offer_declined", Party.seller),
        (act(neg, BUYER, "withdraw"), "offer_withdrawn", Party.buyer),
        (expire(neg, DEADLINE) or neg, "offer_expired", None),
        (close_item_sold(neg, T0 + 1) or neg, "offer_item_sold", None),
    ]
    for after, kind, actor in changes:
        assert (notice_kind(after), actor_of(after)) == (kind, actor)
    assert set(NOTICE_KINDS) == set(OfferState)


def test_the_counterparty_is_told_of_an_action_both_of_expiry_and_a_sale() -> None:
    neg = seller_turn()
    assert recipients_of(neg, Party.buyer) == (SELLER,)
    assert recipients_of(neg, Party.seller) == (BUYER,)
    assert recipients_of(neg, None) == (BUYER, SELLER)
    assert (party_of(neg, BUYER), party_of(neg, SELLER), party_of(neg, STRANGER)) == (
        Party.buyer,
        Party.seller,
        None,
    )


def test_a_negotiation_checks_its_own_shape() -> None:
    neg = seller_turn()
    with pytest.raises(ValueError):
        replace(neg, prices=())
    with pytest.raises(ValueError):
        replace(neg, expires_at_ms=None)
    with pytest.raises(ValueError):
        replace(neg, state=OfferState.declined)  # closed, yet with a deadline


# Properties: random actors, actions, amounts and clock jumps.

# Weighted so that negotiations run long: counters and small clock jumps are common.
steps = st.lists(
    st.tuples(
        # "receiver" and "sender" name a party by their place in the negotiation.
        st.sampled_from(["buyer", "seller", "stranger", "receiver", "receiver", "sender"]),
        st.sampled_from([*OfferAction, "counter", "counter", "counter", "expire", "sold"]),
        st.one_of(
            st.none(),
            st.integers(-2, 12_000),  # anything, mostly out of bounds
            st.floats(0, 1).map(lambda f: ("inside", f)),  # somewhere between the bounds
            st.tuples(st.sampled_from([0, 1]), st.sampled_from([0, 0, -1, 1])),  # at a bound
        ),
        st.one_of(
            st.integers(0, 10),
            st.integers(0, TTL // 4),
            st.integers(0, 2 * TTL),
            st.sampled_from([-1, 0, 1]).map(lambda d: ("deadline", d)),
        ),
    ),
    max_size=40,
)
RESULT = {
    "accept": OfferState.accepted,
    "decline": OfferState.declined,
    "counter": OfferState.open,
    "withdraw": OfferState.withdrawn,
}
PROPERTY = settings(max_examples=400, deadline=None, database=None)


def pick_amount(neg: Negotiation, how: Any) -> int | None:
    low, high = counter_bounds(neg)
    if isinstance(how, tuple) and how[0] == "inside":
        return low + 1 + int(how[1] * max(0, high - low - 2))
    if isinstance(how, tuple):
        bound, delta = how
        return (high if bound else low) + int(delta)
    return None if how is None else int(how)


def party_other(party: Party) -> Party:
    return Party.seller if party is Party.buyer else Party.buyer


def check_prices(neg: Negotiation) -> None:
    buyer = [s.amount for s in neg.prices if s.by is Party.buyer]
    seller = [s.amount for s in neg.prices if s.by is Party.seller]
    assert buyer == sorted(set(buyer)), "buyer prices strictly increase"
    assert seller == sorted(set(seller), reverse=True), "seller prices strictly decrease"
    assert all(0 < b < s for b in buyer for s in [*seller, neg.item_price])
    assert all(a.by is not b.by for a, b in zip(neg.prices, neg.prices[1:], strict=False))
    assert [s.at_ms for s in neg.prices] == sorted(s.at_ms for s in neg.prices)


@PROPERTY
@given(
    item_price=st.integers(2, 12_000),
    origin=st.sampled_from(Party),
    first=st.floats(0, 1),
    script=steps,
)
def test_r5_r7_invariants_hold_whatever_happens(
    item_price: int, origin: Party, first: float, script: list[Any]
) -> None:
    listing = replace(LISTING, price=Money(item_price, "CAD"))
    if origin is Party.buyer:
        neg = buyer_offer(1 + int(first * (item_price - 2)), listing=listing)
    else:
        neg = liker_offer(max(1, int(first * 9 * item_price // 10)), listing=listing)
    now = T0
    for who, action, how, jump in script:
        before = neg
        if isinstance(jump, tuple):
            if before.expires_at_ms is not None:
                now = max(now, before.expires_at_ms + jump[1])
        else:
            now += jump
        if action == "expire":
            expired = expire(before, now)
            due = before.state is OfferState.open and now >= (before.expires_at_ms or 0)
            assert (expired is not None) == due
            neg = expired or before
        elif action == "sold":
            sold = close_item_sold(before, now)
            assert (sold is None) == (before.state is not OfferState.open)
            neg = sold or before
        else:
            amount = pick_amount(before, how) if action == "counter" else None
            sender = before.current.by
            who = {"sender": str(sender), "receiver": str(party_other(sender))}.get(who, who)
            try:
                neg = respond(
                    before, actor_id=ACTORS[who], action=action, amount=amount, now_ms=now
                )
            except ParleyError as error:
                if error.code is ErrorCode.bad_request:
                    assert amount is None or amount <= 0
                elif who == "stranger":
                    assert error.code is ErrorCode.forbidden
                elif before.state is not OfferState.open:
                    assert error.code is ErrorCode.offer_closed
                elif now >= (before.expires_at_ms or 0):
                    assert error.code is ErrorCode.offer_expired
                else:
                    assert error.code in (ErrorCode.not_your_turn, ErrorCode.price_out_of_range)
                continue
            # Accepted: only a party, on an open negotiation, before its deadline.
            assert who in ("buyer", "seller")
            assert before.state is OfferState.open
            assert before.expires_at_ms is not None and now < before.expires_at_ms
            assert neg.state is RESULT[action]
            if action == "counter":
                low, high = counter_bounds(before)
                assert low < neg.current.amount < high
                assert neg.expires_at_ms == now + TTL
        if neg is not before:
            assert neg.version == before.version + 1
            assert before.state is OfferState.open, "a closed negotiation never changes"
        else:
            assert neg.version == before.version
        check_prices(neg)
        assert (neg.state is OfferState.open) == (neg.turn is not None)
        if neg.state is OfferState.accepted:
            assert neg.agreed_price == neg.prices[-1].amount
    assert neg.version == len(neg.prices) + (neg.state is not OfferState.open)
