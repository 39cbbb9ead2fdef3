"""The push outbox: notifications handed to push gateways, at least once, in order per member.

The hub enqueues one ``PushItem`` per notification per member; gateways, in
named consumer groups, fetch ``Delivery``s and ack them. The rules, the same on
both backends (``tests/store/test_outbox.py``; the contract for gateways is
``docs/push.md``):

- every group gets every item retained; a group is created by its first fetch,
  starting at the oldest item retained;
- a fetched item is held by its consumer until acked or until the visibility
  timeout passes (on the injected clock); then any consumer of the group gets
  it again, with ``deliveries`` one higher;
- a member's items go out in ``seq`` order, and while any item of a member is
  held, no consumer of the group gets another item of that member (one fetch
  may hand out several of them at once);
- bounded: at most ``max_items`` retained (the oldest go first), and an item
  every existing group has acked is dropped;
- with a ``render`` hook, an item is rendered from its notification when it
  goes out, so an item not yet handed out follows its message's edits, and one
  whose notification was withdrawn is acked for the group instead of handed out.

A notification and its push item are one change made in two stores (the
member's room and the outbox, on two slots of a Redis Cluster), so the outbox
journals it: ``prepare`` records the item under the notification's key before
the notification is appended; ``commit`` then enqueues it with the
notification's ``seq``, forgets the preparation and remembers the key as
pushed, in one atomic step. A hub that dies in between leaves a preparation
that ``prepared`` lists, and any hub completes it (``Notifier.complete``):
appending the notification again is idempotent by its key, and committing a
key twice enqueues once. A key stays remembered for ``PUSHED_KEEP_MS``, so a
change told again within that time (a retried report) pushes nothing new.

``open_outbox(store)`` picks the backend of the store (SQLite tables or Redis
Streams), importing it lazily. Engine errors become ``StoreUnavailable`` at the
backend's edge, as in the stores.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import UserId
from parley.server.store.base import Store, StoreUnavailable

log = logging.getLogger("parley.push")

NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_FETCH: Final = 1000  # items one fetch may ask for
# A fetch examines at most this many waiting items to fill its count: the
# bound on its cost when many items wait behind members held by others.
SCAN_MAX: Final = 2000


@dataclass(frozen=True, slots=True)
class PushItem:
    """What the hub hands over: one per notification per member."""

    user_id: UserId
    seq: int  # the notification's seq in the member's log room "user:<id>"
    kind: str  # "mention", "order_opened", "order_message", "order_status", "offer_*"
    title: str  # localized with the member's locale
    body: str
    link: str  # deep link into the app
    locale: str
    ts: int  # ms since the epoch
    data: dict[str, Any]  # the notification's payload (kind-specific, JSON-able)

    def to_wire(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "seq": self.seq,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "locale": self.locale,
            "ts": self.ts,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a consumer gets."""

    id: str  # opaque outbox id, to ack with
    item: PushItem
    deliveries: int  # 1 the first time, 2 on the first redelivery...
    read: bool  # read in the app before this fetch: skip it, but ack it


IsRead = Callable[[UserId, int], Awaitable[bool]]
"""``(user_id, seq) -> bool``: has the member read this notification already?"""

Render = Callable[[PushItem], Awaitable[PushItem | None]]
"""``item -> item``: the item as it goes out now, from its notification as it reads now;
None when the notification was withdrawn (its message deleted, or edited away from the
member). The stored item need not hold the member's words: they are read when it goes out."""

PUSHED_KEEP_MS: Final = 24 * 3600 * 1000  # how long a pushed notification's key is remembered

# What a backend's ``_take`` hands back: (id, encoded item, deliveries) in
# order, and how long to wait at most before looking again when it is empty.
Taken = tuple[list[tuple[str, bytes | str, int]], float | None]


def check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise ParleyError(
            ErrorCode.bad_request, f"{what} must be a name of [A-Za-z0-9_.:-]{{1,64}}"
        )
    return name


def encode_item(item: PushItem) -> bytes:
    """The stored form of an item (JSON), made before any write so a bad one fails alone."""
    return orjson.dumps(item.to_wire())


def encode_unsequenced(item: PushItem) -> bytes:
    """A prepared item: its JSON without ``seq``, which ``with_seq`` puts in front."""
    wire = item.to_wire()
    del wire["seq"]
    return orjson.dumps(wire)


def with_seq(raw: bytes, seq: int) -> bytes:
    """The stored form of a prepared item once its notification's ``seq`` is known."""
    return b'{"seq":%d,%s' % (seq, raw[1:])


def decode_item(raw: bytes | str) -> PushItem:
    fields = orjson.loads(raw)
    return PushItem(
        UserId(fields["user_id"]),
        fields["seq"],
        fields["kind"],
        fields["title"],
        fields["body"],
        fields["link"],
        fields["locale"],
        fields["ts"],
        fields["data"],
    )


class PushOutbox(abc.ABC):
    """The interface, and the long-poll and ``read`` flag every backend shares.

    A backend implements ``_put``, ``_prepare``, ``_commit``, ``_prepared``,
    ``_take``, ``_ack`` and ``_stats``, each one
    atomic step on its engine; this class validates, waits and wakes.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        is_read: IsRead | None,
        visibility_timeout: float,
        max_items: int,
        render: Render | None = None,
    ) -> None:
        if not visibility_timeout > 0:
            raise ValueError("visibility_timeout must be a positive number of seconds")
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.clock = clock
        self.is_read = is_read
        self.render = render
        self.visibility_timeout = visibility_timeout
        self.max_items = max_items
        self._closed = False
        self.long_polls = 0  # fetches waiting now for an item (a gauge for operators)
        # Replaced on each change, so a waiter that took it before looking
        # cannot miss a change made while it looked.
        self._changed = asyncio.Event()

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare the engine; the store is open already."""

    async def close(self) -> None:
        """Stop serving: long-polls in progress return at once, later calls fail."""
        self._closed = True
        self._wake()

    async def enqueue(self, items: Sequence[PushItem]) -> None:
        """Store ``items`` durably, in this order, before returning."""
        self._check_open()
        if not items:
            return
        await self._put([(item, encode_item(item)) for item in items])
        self._wake()

    async def prepare(self, key: str, item: PushItem) -> bool:
        """Record that the notification ``key`` is to be pushed as ``item`` (its
        ``seq`` is not known yet); ``False`` when ``key`` was pushed already.

        A key already prepared keeps its first item.
        """
        self._check_open()
        return await self._prepare(key, item.user_id, encode_unsequenced(item), self._now_ms())

    async def commit(self, key: str, seq: int) -> bool:
        """Enqueue the item prepared under ``key`` with ``seq``, forget the
        preparation and remember ``key`` as pushed, in one step; ``False`` when
        nothing is prepared under ``key`` (committed already, or never prepared)."""
        self._check_open()
        now_ms = self._now_ms()
        done = await self._commit(key, seq, now_ms, now_ms - PUSHED_KEEP_MS)
        if done:
            self._wake()
        return done

    async def prepared(self, before_ms: int, limit: int) -> list[tuple[str, PushItem]]:
        """Preparations made before ``before_ms`` and not committed, oldest first:
        ``(key, item)`` with ``item.seq`` 0."""
        self._check_open()
        return [
            (key, decode_item(with_seq(raw, 0)))
            for key, raw in await self._prepared(before_ms, limit)
        ]

    async def drop_member(self, user_id: UserId) -> int:
        """Drop every item of the member, handed out or not, and their preparations,
        for every group (their erasure); return how many items. Idempotent."""
        self._check_open()
        return await self._drop_member(user_id)

    async def fetch(self, group: str, consumer: str, *, count: int, wait: float) -> list[Delivery]:
        """Hand ``consumer`` up to ``count`` items, waiting up to ``wait`` seconds for one."""
        check_name("group", group)
        check_name("consumer", consumer)
        if not 1 <= count <= MAX_FETCH:
            raise ParleyError(ErrorCode.bad_request, f"count must be 1..{MAX_FETCH}")
        if not math.isfinite(wait):
            raise ParleyError(ErrorCode.bad_request, "wait must be a number of seconds")
        loop = asyncio.get_running_loop()
        until = loop.time() + max(wait, 0.0)
        while True:
            self._check_open()
            changed = self._changed
            now_ms = to_ms(self.clock.now())
            deadline_ms = now_ms + to_ms(self.visibility_timeout)
            taken, recheck = await self._take(group, consumer, count, now_ms, deadline_ms)
            if taken:
                deliveries, withdrawn = await self._deliveries(taken)
                if withdrawn:  # never handed out, and never will be: done for this group
                    await self._ack(group, withdrawn)
                if deliveries or not withdrawn:
                    return deliveries
                continue  # everything taken was withdrawn: look again at once
            left = until - loop.time()
            if left <= 0 or self._closed:
                return []
            self.long_polls += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left if recheck is None else min(left, recheck)):
                        await changed.wait()
            finally:
                self.long_polls -= 1
            if self._closed:
                return []  # closed while it waited: it returns, as one that was looking does

    async def ack(self, group: str, ids: Sequence[str]) -> int:
        """Ack items handed out to ``group``; how many were pending and now are not.

        Ids that are unknown, already acked or never handed out are ignored.
        """
        check_name("group", group)
        self._check_open()
        acked = await self._ack(group, list(dict.fromkeys(ids))) if ids else 0
        if acked:
            self._wake()  # a member held until now may have items to hand out
        return acked

    async def stats(self, group: str) -> dict[str, int]:
        """``length`` (items retained), ``pending`` (handed out to ``group``, not
        acked) and ``held`` (of those, still within the visibility timeout)."""
        check_name("group", group)
        self._check_open()
        return await self._stats(group, to_ms(self.clock.now()))

    # What a backend provides.

    @abc.abstractmethod
    async def _put(self, items: list[tuple[PushItem, bytes]]) -> None: ...

    @abc.abstractmethod
    async def _prepare(self, key: str, user_id: UserId, raw: bytes, now_ms: int) -> bool: ...

    @abc.abstractmethod
    async def _commit(self, key: str, seq: int, now_ms: int, forget_before_ms: int) -> bool: ...

    @abc.abstractmethod
    async def _prepared(self, before_ms: int, limit: int) -> list[tuple[str, bytes]]: ...

    @abc.abstractmethod
    async def _take(
        self, group: str, consumer: str, count: int, now_ms: int, deadline_ms: int
    ) -> Taken: ...

    @abc.abstractmethod
    async def _drop_member(self, user_id: UserId) -> int: ...

    @abc.abstractmethod
    async def _ack(self, group: str, ids: list[str]) -> int: ...

    @abc.abstractmethod
    async def _stats(self, group: str, now_ms: int) -> dict[str, int]: ...

    # Shared.

    def _now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the push outbox is closed")

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _deliveries(
        self, taken: list[tuple[str, bytes | str, int]]
    ) -> tuple[list[Delivery], list[str]]:
        """What goes out of ``taken``, rendered now; and the ids of the withdrawn items."""
        stored = [decode_item(raw) for _, raw, _ in taken]
        items = await asyncio.gather(*(self._rendered(item) for item in stored))
        flags = await asyncio.gather(*(self._read_flag(item) for item in items if item))
        out = iter(flags)
        deliveries: list[Delivery] = []
        withdrawn: list[str] = []
        for (item_id, _, times), item in zip(taken, items, strict=True):
            if item is None:
                withdrawn.append(item_id)
            else:
                deliveries.append(Delivery(item_id, item, times, next(out)))
        return deliveries, withdrawn

    async def _rendered(self, item: PushItem) -> PushItem | None:
        if self.render is None:
            return item
        try:
            return await self.render(item)
        except ParleyError as exc:
            # The item as stored holds no member's words: it may go out as it is.
            log.warning("push: notification of user %s unread (%s)", item.user_id, exc.code)
            return item

    async def _read_flag(self, item: PushItem) -> bool:
        if self.is_read is None:
            return False
        try:
            return await self.is_read(item.user_id, item.seq)
        except ParleyError as exc:
            # The items are handed out already; a push the member may have
            # read costs less than holding them back until the timeout.
            log.warning("push: read state of user %s unknown (%s)", item.user_id, exc.code)
            return False


def open_outbox(
    store: Store,
    *,
    clock: Clock,
    is_read: IsRead | None,
    visibility_timeout: float,
    max_items: int,
    render: Render | None = None,
) -> PushOutbox:
    """The outbox of ``store``'s backend: tables in its SQLite file, or Redis Streams."""
    options: dict[str, Any] = {
        "clock": clock,
        "is_read": is_read,
        "visibility_timeout": visibility_timeout,
        "max_items": max_items,
        "render": render,
    }
    from parley.server.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from parley.server.store.sqlite_outbox import SqliteOutbox

        return SqliteOutbox(store, **options)
    # Only a Redis store can be here, and then redis is imported already.
    from parley.server.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from parley.server.store.redis_outbox import RedisOutbox

        return RedisOutbox(store, **options)
    raise ValueError(f"push outbox: no backend for {type(store).__name__}")
