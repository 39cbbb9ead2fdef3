"""Hostile input, fuzzed, in the pure core: what members and the backend send reaches
the contact guard, mentions, order status reports, listing changes and offers; none of
them raises anything but ``ParleyError`` with a documented code, and what they return
holds together.

Texts here are what a decoded frame can hold: any Unicode but lone surrogates (the
codecs refuse those before the core sees them). Other values are anything JSON or
MessagePack carries: huge integers, nan and infinities, booleans, bytes, nesting.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.contact_guard import MASK_CHAR, find_contact_details, mask_contact_details
from parley.server.core.contact_policy import guard_text
from parley.server.core.mentions import (
    MAX_USERNAME,
    find_mentions,
    is_valid_username,
    username_key,
)
from parley.server.core.model import (
    LISTING_STATUSES,
    ORDER_STATUSES,
    Listing,
    ListingId,
    Money,
    UserId,
)
from parley.server.core.offers import (
    OfferAction,
    make_offer,
    plan_offer_to_likers,
    respond,
    seller_offer,
    to_wire,
)
from parley.server.core.order_status import check_report, status_data
from parley.server.core.roomevents import LISTING_CHANGES, listing_change

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text the way members type it, and with what often trips detectors: digits, @, dots.
texts = st.text(max_size=200) | st.text(
    st.sampled_from("0123456789 @.-_+()/:[]azAZéÉ\u00a0\u0301\n\t")
    | st.characters(codec="utf-8"),  # no lone surrogates: the codecs refuse them
    max_size=200,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 1, 2**53 - 1, 2**63, 2**64, -(2**70)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.binary(max_size=16)
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def refused_with(exc: ParleyError, *codes: ErrorCode) -> None:
    assert exc.code in codes, (exc.code, exc.message)
    assert exc.message


# Contact guard (R8) and mentions (R4).


@FUZZ
@given(texts, st.sampled_from(["CA", "US", "FR", "GB", "ZZ"]), st.lists(st.text(max_size=10)))
def test_the_contact_guard_reads_any_text(text: str, region: str, members: list[str]) -> None:
    keys = {username_key(m) for m in members}
    findings = find_contact_details(text, region=region, members=keys)
    assert all(0 <= f.start < f.end <= len(text) for f in findings)
    assert all(a.end <= b.start for a, b in pairwise(findings))
    masked = mask_contact_details(text, findings)
    assert len(masked) == len(text)
    assert all(c in (MASK_CHAR, text[i]) for i, c in enumerate(masked))


@FUZZ
@given(texts, st.sampled_from(["mask", "reject", "off"]))
def test_every_policy_answers_any_text(text: str, policy: str) -> None:
    try:
        guarded = guard_text(text, policy, region="CA")
    except ParleyError as exc:
        assert policy == "reject"
        refused_with(exc, ErrorCode.contact_details)
        assert exc.details and exc.details["kinds"]
    else:
        assert len(guarded.text) == len(text)
        assert policy != "off" or guarded.text == text


@FUZZ
@given(texts)
def test_mentions_in_any_text(text: str) -> None:
    for span in find_mentions(text):
        assert text[span.start] == "@"
        assert text[span.start + 1 : span.end] == span.name
        assert is_valid_username(span.name)
        assert span.key == username_key(span.name)
    is_valid_username(text)


@FUZZ
@given(st.text(max_size=MAX_USERNAME + 8))
def test_username_keys_are_stable(name: str) -> None:
    key = username_key(name)
    assert username_key(key) == key or not is_valid_username(name)


# What the backend reports (R3, R9).


@FUZZ
@given(
    anything | st.sampled_from(sorted(ORDER_STATUSES)),
    anything | st.sampled_from(["1Z999AA10123456784", "abc", "7" * 41]),
    anything | st.sampled_from(["ups", "canada_post", "pigeon"]),
    anything | texts,
)
def test_order_status_reports_of_anything(
    status: object, tracking: object, carrier: object, reason: object
) -> None:
    try:
        report = check_report(status, tracking, carrier, reason)
    except ParleyError as exc:
        refused_with(exc, ErrorCode.bad_request)
    else:
        data = status_data(report)  # a report that passed always renders
        assert data["status"] == status and set(data["texts"]) == {"en", "fr-CA"}


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["type", "count", "fields", "event_id"]) | st.text(max_size=8),
        anything
        | st.sampled_from(sorted(LISTING_CHANGES))
        | st.integers(0, 101)
        | st.lists(st.text(max_size=33), max_size=21),
        max_size=5,
    )
)
def test_listing_changes_of_anything(body: dict[str, Any]) -> None:
    try:
        change = listing_change(body)
    except ParleyError as exc:
        refused_with(exc, ErrorCode.bad_request)
    else:
        assert change.text and change.data["type"] == f"listing_{body['type']}"


# Offers (R5-R7): amounts and actions as a member sends them.

SELLER, BUYER = UserId("u-seller"), UserId("u-buyer")
amounts = anything | st.integers(-5, 20_000) | st.sampled_from([True, 1.0, 9000.0, 2**64])
listings = st.builds(
    Listing,
    id=st.just(ListingId("42")),
    seller_id=st.just(SELLER),
    title=st.just("Wool coat"),
    price=st.builds(Money, st.integers(0, 2**63), st.just("CAD")),
    offers_enabled=st.booleans(),
    status=st.sampled_from(sorted(LISTING_STATUSES)),
)
OFFER_CODES = (
    ErrorCode.bad_request,
    ErrorCode.forbidden,
    ErrorCode.offers_disabled,
    ErrorCode.listing_unavailable,
    ErrorCode.price_out_of_range,
    ErrorCode.discount_too_small,
    ErrorCode.too_many_recipients,
    ErrorCode.offer_closed,
    ErrorCode.offer_expired,
    ErrorCode.not_your_turn,
)
NOW = 1_800_000_000_000


@FUZZ
@given(listings, amounts, st.sampled_from([BUYER, SELLER]))
def test_opening_offers_with_any_amount(listing: Listing, amount: object, who: UserId) -> None:
    for opener in (make_offer, seller_offer):
        try:
            neg = opener(offer_id="of1", listing=listing, buyer_id=who, amount=amount, now_ms=NOW)
        except ParleyError as exc:
            refused_with(exc, *OFFER_CODES)
        else:
            assert type(amount) is int and amount > 0
            to_wire(neg, who, now_ms=NOW)


@FUZZ
@given(
    listings,
    amounts,
    st.just("all")
    | st.lists(st.sampled_from(["u1", "u2", SELLER, "u9"]) | st.text(), max_size=25)
    | st.text(max_size=5),
    st.lists(st.sampled_from(["u1", "u2", "u3", SELLER]), max_size=30),
    st.sampled_from([SELLER, BUYER]),
)
def test_offers_to_likers_with_anything(
    listing: Listing, amount: object, to: Any, likers: list[str], actor: UserId
) -> None:
    try:
        plan = plan_offer_to_likers(
            listing=listing,
            actor_id=actor,
            amount=amount,
            to=to,
            likers=[UserId(u) for u in likers],
            open_buyers={UserId("u2")},
        )
    except ParleyError as exc:
        refused_with(exc, *OFFER_CODES)
    else:
        assert len(plan.create) + len(plan.skipped) <= 20
        assert SELLER not in plan.create


@FUZZ
@given(
    amounts,
    anything | st.sampled_from([str(a) for a in OfferAction]),
    anything | amounts,
    st.sampled_from([BUYER, SELLER, "u-stranger"]),
    st.integers(NOW - 1, NOW + 10**12),
)
def test_answers_with_any_action_and_amount(
    first: object, action: Any, amount: object, actor: str, now_ms: int
) -> None:
    listing = Listing(ListingId("42"), SELLER, "Coat", Money(10_000, "CAD"), offers_enabled=True)
    try:
        neg = make_offer(offer_id="of1", listing=listing, buyer_id=BUYER, amount=first, now_ms=NOW)
    except ParleyError as exc:
        refused_with(exc, *OFFER_CODES)
        return
    try:
        after = respond(neg, actor_id=UserId(actor), action=action, amount=amount, now_ms=now_ms)
    except ParleyError as exc:
        refused_with(exc, *OFFER_CODES)
    else:
        assert after.version == neg.version + 1
        to_wire(after, UserId(actor), now_ms=now_ms)
