"""The rules of restrictions, pure, on an injected time: what each kind refuses,
when it ends, and how a hub's book follows the broadcast changes."""

from __future__ import annotations

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.restrictions import (
    Restriction,
    RestrictionBook,
    check_restriction,
    restriction_wire,
)

NOW = 1_800_000_000_000


def book_with(*restrictions: Restriction) -> RestrictionBook:
    book = RestrictionBook()
    book.replace_all(list(restrictions))
    return book


def test_read_only_refuses_writes_not_connects_until_it_ends() -> None:
    book = book_with(Restriction("bob", "read_only", NOW + 10, "why", NOW))
    book.check_connect("bob", NOW)
    with pytest.raises(ParleyError) as info:
        book.check_write("bob", NOW + 9)
    assert info.value.code is ErrorCode.restricted
    assert info.value.details == {"kind": "read_only", "until": NOW + 10}
    book.check_write("bob", NOW + 10)  # ended
    book.check_write("ann", NOW)


def test_suspended_refuses_connects_and_writes_and_without_until_lasts() -> None:
    book = book_with(Restriction("bob", "suspended", None, "why", NOW))
    for check in (book.check_connect, book.check_write):
        with pytest.raises(ParleyError) as info:
            check("bob", NOW + 10**12)
        assert info.value.details == {"kind": "suspended", "until": None}


def test_the_book_follows_broadcast_changes() -> None:
    book = RestrictionBook()
    held = book.by_user
    suspended = Restriction("bob", "suspended", None, "why", NOW)
    assert book.heard({"user_id": "bob", "restriction": restriction_wire(suspended)}) == "bob"
    assert book.active("bob", NOW) == suspended
    read_only = Restriction("cat", "read_only", None, "why", NOW)
    assert book.heard({"user_id": "cat", "restriction": restriction_wire(read_only)}) is None
    assert book.heard({"user_id": "bob", "restriction": None}) is None
    assert book.active("bob", NOW) is None
    assert book.heard({"restriction": None}) is None  # malformed: ignored
    assert book.replace_all([suspended]) == ["bob"]
    assert held is book.by_user and set(held) == {"bob"}  # the hub's alias stays valid


@pytest.mark.parametrize(
    ("kind", "until", "reason"),
    [
        ("banned", None, "x"),
        ("read_only", NOW, "x"),
        ("read_only", NOW - 1, "x"),
        ("read_only", 1.5, "x"),
        ("read_only", True, "x"),
        ("read_only", None, ""),
        ("read_only", None, "  "),
        ("read_only", None, None),
        ("read_only", None, "x" * 501),
    ],
)
def test_a_malformed_restriction_is_bad_request(
    kind: object, until: object, reason: object
) -> None:
    with pytest.raises(ParleyError) as info:
        check_restriction(kind, until, reason, NOW)
    assert info.value.code is ErrorCode.bad_request


def test_a_well_formed_restriction_is_taken_as_given() -> None:
    assert check_restriction("suspended", NOW + 1, "why", NOW) == ("suspended", NOW + 1, "why")
