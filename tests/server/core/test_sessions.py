"""A session from an e-mail link: its one room, with the ops of a conversation (R11)."""

from __future__ import annotations

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import (
    Conversations,
    Delete,
    Edit,
    History,
    Likers,
    Notifications,
    NotificationsRead,
    OfferMake,
    Offers,
    Ping,
    Post,
    Read,
    Request,
    Subscribe,
    Typing,
    Unsubscribe,
)
from parley.server.core.sessions import check_in_scope

ROOM = "order:o1"


@pytest.mark.parametrize(
    "request_",
    [
        Subscribe(1, ROOM),
        Subscribe(1, ROOM, since=3, epoch="e"),
        Unsubscribe(1, ROOM),
        History(1, ROOM),
        Post(1, ROOM, "hello", "c1"),
        Edit(1, ROOM, 2, "hello again"),
        Delete(1, ROOM, 2),
        Read(1, ROOM, 2),
        Typing(1, ROOM),
        Ping(1),
    ],
    ids=lambda r: type(r).__name__,
)
def test_r11_a_scoped_session_uses_its_room(request_: Request) -> None:
    check_in_scope(ROOM, request_)


@pytest.mark.parametrize(
    "request_",
    [
        Subscribe(1, "order:o2"),
        Subscribe(1, "listing:l1"),
        History(1, "order:o2"),
        Post(1, "listing:l1", "hello", "c1"),
        Edit(1, "order:o2", 2, "x"),
        Delete(1, "order:o2", 2),
        Read(1, "order:o2", 2),
        Typing(1, "order:o2"),
        Notifications(1),
        NotificationsRead(1, 3),
        Offers(1),
        OfferMake(1, "l1", 100),
        Likers(1, "l1"),
        Conversations(1, "purchases"),
    ],
    ids=lambda r: f"{type(r).__name__}-{getattr(r, 'room', '')}",
)
def test_r11_anything_else_is_forbidden(request_: Request) -> None:
    with pytest.raises(ParleyError) as caught:
        check_in_scope(ROOM, request_)
    assert caught.value.code is ErrorCode.forbidden
