"""The rules of blocks, mutes and reports, pure: what each silences, what a block
forbids, what a member may report and what a report keeps."""

from __future__ import annotations

from typing import Any

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.model import Author, Entry, UserId
from parley.server.core.moderation import (
    check_may_block,
    check_offer_not_blocked,
    check_room_for_list,
    is_silenced,
    notice_author,
)
from parley.server.core.notices import NoticeText, render_notice
from parley.server.core.reports import (
    Flag,
    check_may_remove,
    check_may_report,
    check_statement,
    report_event,
    should_hold,
    snapshot_of,
    statement_in,
)

BOB = {"id": "bob", "name": "bob"}


@pytest.mark.parametrize(
    ("payload", "blocked", "muted", "silenced"),
    [
        ({"kind": "mention", "author": BOB}, True, False, True),
        ({"kind": "mention", "author": BOB}, False, True, True),
        ({"kind": "mention", "author": BOB}, False, False, False),
        ({"kind": "order_message", "author": BOB}, True, False, True),
        ({"kind": "order_message", "author": BOB}, False, True, True),
        ({"kind": "offer_countered", "author": BOB}, True, False, True),
        # A mute silences what a room's messages cause, not a negotiation's steps.
        ({"kind": "offer_received", "author": BOB}, False, True, False),
        # What the marketplace itself says is never silenced.
        ({"kind": "order_status"}, True, True, False),
        ({"kind": "order_opened"}, True, True, False),
        ({"kind": "moderation"}, True, True, False),
    ],
)
def test_what_a_block_and_a_mute_silence(
    payload: dict[str, Any], blocked: bool, muted: bool, silenced: bool
) -> None:
    assert is_silenced(payload, author_blocked=blocked, room_muted=muted) is silenced


@pytest.mark.parametrize(
    ("payload", "author"),
    [
        ({"author": BOB}, "bob"),
        ({"author": {"id": 7}}, None),
        ({"author": "bob"}, None),
        ({}, None),
    ],
)
def test_a_notice_names_its_author_only_when_it_has_one(
    payload: dict[str, Any], author: str | None
) -> None:
    assert notice_author(payload) == author


def test_a_member_cannot_block_themselves() -> None:
    check_may_block("ann", "bob")
    with pytest.raises(ParleyError) as info:
        check_may_block("ann", "ann")
    assert info.value.code is ErrorCode.bad_request


def test_a_full_list_refuses_with_its_bound() -> None:
    check_room_for_list(999, 1000, "the block list")
    with pytest.raises(ParleyError) as info:
        check_room_for_list(1000, 1000, "the block list")
    assert info.value.code is ErrorCode.limit_reached and info.value.details == {"max": 1000}


def test_a_blocked_offer_says_neither_who_nor_why() -> None:
    check_offer_not_blocked(False)
    with pytest.raises(ParleyError) as info:
        check_offer_not_blocked(True)
    assert info.value.code is ErrorCode.blocked
    assert "block" not in info.value.message


def comment(author: str | None = "bob", kind: str = "comment", deleted: bool = False) -> Entry:
    return Entry(
        "listing:L1",
        3,
        kind,  # type: ignore[arg-type]
        "words",
        5,
        None if author is None else Author(UserId(author), author),
        deleted=deleted,
    )


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (None, ErrorCode.not_found),
        (comment(kind="system", author=None), ErrorCode.not_found),
        (comment(deleted=True), ErrorCode.not_found),
        (comment(kind="edit"), ErrorCode.not_found),
        (comment(author="ann"), ErrorCode.forbidden),
    ],
)
def test_what_a_member_may_not_report(target: Entry | None, code: ErrorCode) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_report("ann", target)
    assert info.value.code is code


def test_a_report_keeps_the_message_as_it_was_and_tells_the_backend_ids_only() -> None:
    target = check_may_report("ann", comment())
    assert snapshot_of(target) == {
        "room": "listing:L1",
        "seq": 3,
        "text": "words",
        "ts": 5,
        "author": {"id": "bob", "name": "bob"},
    }
    event = report_event("r1", target, Flag(UserId("ann"), "spam", "a note", 9))
    assert event == {
        "type": "report.created",
        "report_id": "r1",
        "room": "listing:L1",
        "seq": 3,
        "author_id": "bob",
        "reason": "spam",
        "reported_at": 9,
    }


@pytest.mark.parametrize(
    ("statement", "locale", "text"),
    [
        ({"fr-CA": "Retiré.", "en": "Removed."}, "fr-CA", "Retiré."),
        ({"fr-CA": "Retiré.", "en": "Removed."}, "fr", "Retiré."),
        ({"fr-CA": "Retiré.", "en": "Removed."}, "en-US", "Removed."),
        ({"fr-CA": "Retiré.", "en": "Removed."}, "es", "Removed."),  # else English
        ({"fr": "Retiré."}, "en", "Retiré."),  # else the one there is
        ("Removed.", "fr-CA", "Removed."),  # one text for every language
        ({"en": "Removed."}, None, "Removed."),
    ],
)
def test_the_statement_of_reasons_is_given_in_the_members_language(
    statement: object, locale: str | None, text: str
) -> None:
    assert statement_in(check_statement(statement), locale) == text


@pytest.mark.parametrize(
    "statement",
    [None, "", "   ", 7, {}, {"en": ""}, {"en": 5}, {"not a locale": "x"}, {"en": "x" * 2001},
     {f"l{i}x": "x" for i in range(11)}, ["en", "text"]],
    ids=repr,
)  # fmt: skip
def test_a_malformed_statement_is_refused(statement: object) -> None:
    with pytest.raises(ParleyError) as info:
        check_statement(statement)
    assert info.value.code is ErrorCode.bad_request


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (None, ErrorCode.not_found),
        (comment(kind="system", author=None), ErrorCode.not_found),
        (comment(deleted=True), ErrorCode.conflict),
    ],
)
def test_what_the_moderators_cannot_remove(target: Entry | None, code: ErrorCode) -> None:
    with pytest.raises(ParleyError) as info:
        check_may_remove(target)
    assert info.value.code is code


def test_removing_a_removed_message_again_is_a_retry() -> None:
    removed = Entry("listing:L1", 3, "comment", "", 5, Author(UserId("bob"), "bob"),
                    deleted=True, removed=True)  # fmt: skip
    assert check_may_remove(removed) is removed


@pytest.mark.parametrize(
    ("room", "reporters", "hold_after", "held", "expected"),
    [
        ("listing:L1", 3, 3, False, True),
        ("listing:L1", 4, 3, False, True),
        ("listing:L1", 2, 3, False, False),
        ("listing:L1", 9, 0, False, False),  # off
        ("order:O1", 9, 3, False, False),  # order rooms stay completable
        ("listing:L1", 9, 3, True, False),  # held already
    ],
)
def test_when_a_public_comment_is_held(
    room: str, reporters: int, hold_after: int, held: bool, expected: bool
) -> None:
    target = Entry(room, 3, "comment", "w", 5, Author(UserId("bob"), "bob"), held=held)
    assert should_hold(target, reporters, hold_after) is expected


@pytest.mark.parametrize(
    ("payload", "locale", "title", "body"),
    [
        (
            {"kind": "moderation", "action": "message_removed", "statement": "Spam."},
            "en",
            "Your comment was removed",
            "Spam.",
        ),
        (
            {"kind": "moderation", "action": "member_restricted", "statement": "Arnaques."},
            "fr-CA",
            "Votre compte est restreint",
            "Arnaques.",
        ),
        ({"kind": "moderation"}, "en", "New notification", "Open the app to see it."),
    ],
)
def test_a_moderation_notice_pushes_the_statement_of_reasons(
    payload: dict[str, Any], locale: str, title: str, body: str
) -> None:
    assert render_notice(payload, locale) == NoticeText(title, body)
