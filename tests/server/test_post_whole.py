"""A post is acknowledged once it and its notifications are stored.

When the store fails between the message and its notifications (a Redis that
stops answering for a moment), the post answers ``unavailable``: the client
retries it with the same ``client_msg_id``, the retry is answered
``duplicate`` and tells the notifications then. Before, the post was
acknowledged and the notifications were lost for good.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.notify import Notice
from parley.server.store.base import StoreUnavailable
from tests.server.conftest import RunningHub, notification_kinds


def fail_once(hub: RunningHub, kind: str) -> list[str]:
    """The hub's next store write of a ``kind`` notification fails as an unavailable store would."""
    notifier = hub.app.hub.notifier
    original = notifier.send
    failed: list[str] = []

    async def send(notices: Iterable[Notice]) -> int:
        notices = list(notices)
        if not failed and any(n.payload.get("kind") == kind for n in notices):
            failed.append(kind)
            raise StoreUnavailable()
        return await original(notices)

    notifier.send = send  # type: ignore[method-assign]
    return failed


async def test_r4_a_mention_the_store_failed_to_tell_is_told_by_the_posts_retry(
    hub: RunningHub,
) -> None:
    await hub.listing("L1")
    author = await hub.client("u1", "josee")
    tagged = await hub.client("u2", "paul")
    failed = fail_once(hub, "mention")
    with pytest.raises(ParleyError) as refused:
        await author.post("listing:L1", "@paul is the coat still there?", client_msg_id="c1")
    assert refused.value.code is ErrorCode.unavailable
    assert failed == ["mention"]
    assert await notification_kinds(tagged) == []  # not yet: the post is not acknowledged
    retried = await author.post("listing:L1", "@paul is the coat still there?", client_msg_id="c1")
    assert retried["duplicate"] is True
    assert await notification_kinds(tagged) == ["mention"]
    again = await author.post("listing:L1", "@paul is the coat still there?", client_msg_id="c1")
    assert again["seq"] == retried["seq"]
    assert await notification_kinds(tagged) == ["mention"]  # told once however often retried
    history = await author.history("listing:L1")
    assert [m["text"] for m in history["messages"]] == ["@paul is the coat still there?"]


async def test_r9_an_order_message_the_store_failed_to_tell_is_told_by_the_posts_retry(
    hub: RunningHub,
) -> None:
    await hub.listing("L1", seller="s")
    await hub.order("O1", "L1", buyer="b", seller="s")
    seller = await hub.client("s")
    buyer = await hub.client("b")  # connected, away from the order's room
    before = await notification_kinds(buyer)
    failed = fail_once(hub, "order_message")
    with pytest.raises(ParleyError) as refused:
        await seller.post("order:O1", "Shipped this morning", client_msg_id="c1")
    assert refused.value.code is ErrorCode.unavailable
    assert failed == ["order_message"]
    assert await notification_kinds(buyer) == before
    retried = await seller.post("order:O1", "Shipped this morning", client_msg_id="c1")
    assert retried["duplicate"] is True
    assert await notification_kinds(buyer) == [*before, "order_message"]
