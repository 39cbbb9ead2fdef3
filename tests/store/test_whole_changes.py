"""Every change written in several steps is whole once any hub completes it.

A hub dying between two steps is simulated by abandoning the change at a stop
point (``server.stoppoints``): the steps made so far stay stored, the rest never
run. Then a fresh notifier and negotiations on the same store (another hub)
run ``complete``, as the sweeper does. Hypothesis picks the changes, their
retries and where each attempt is abandoned; whatever it picks:

- before completion, no push item exists without its notification;
- after it, every notification is stored once, every push item it called for
  once, with the notification's seq; an accepted offer has its
  ``offer.accepted`` event once, and both parties' ``offer`` entries of every
  version told.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parley.server.negotiations as negotiations_module
import parley.server.notify as notify_module
from parley.server.config import load_config
from parley.server.core.clock import FakeClock, to_ms
from parley.server.core.model import Listing, ListingId, Money, User, UserId
from parley.server.core.offers import Negotiation, OfferAction, Party, make_offer, respond
from parley.server.core.rooms import user_room
from parley.server.negotiations import EVENTS_ROOM, Negotiations
from parley.server.notify import Notice, Notifier
from parley.server.store import Store, open_store
from parley.server.store.outbox import PushOutbox, open_outbox
from parley.server.store.redis import RedisStore
from tests.support.hubproc import API_KEY, SECRET
from tests.support.redis_server import RedisServer

WHOLE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
USERS = [UserId("u1"), UserId("u2"), UserId("u3")]
SELLER, BUYER = UserId("seller"), UserId("buyer")
LISTING = Listing(ListingId("l1"), SELLER, "Vélo", Money(10_000, "CAD"), offers_enabled=True)
NOTIFY_POINTS = [None, "notify.prepared", "notify.appended"]
prefixes = itertools.count()


class Abandoned(Exception):
    """The hub "died" here: nothing after this point of the change runs."""


@contextmanager
def abandon_at(point: str | None) -> Iterator[None]:
    """Make ``point`` raise ``Abandoned`` in the hub's modules for this block."""

    def stop_point(name: str) -> None:
        if name == point:
            raise Abandoned(name)

    saved = notify_module.stop_point, negotiations_module.stop_point
    notify_module.stop_point = negotiations_module.stop_point = stop_point
    try:
        yield
    finally:
        notify_module.stop_point, negotiations_module.stop_point = saved


class Hub:
    """The parts of a hub that make these changes, on a shared store."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        config = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY, push_when="always")
        self.outbox: PushOutbox = open_outbox(
            store, clock=clock, is_read=None, visibility_timeout=60.0, max_items=10_000
        )
        self.notifier = Notifier(config, store, clock, self.outbox)
        self.negotiations = Negotiations(config, store, clock, self.notifier)

    async def complete(self, now_ms: int) -> None:
        await self.negotiations.complete(now_ms + 1)
        await self.notifier.complete(now_ms + 1)


async def attempt(point: str | None, change: Any) -> None:
    with abandon_at(point), contextlib.suppress(Abandoned):
        await change
    await asyncio.sleep(0)  # what gather started beside the abandoned step settles


notices = st.lists(
    st.tuples(
        st.sampled_from(USERS), st.sampled_from(["k1", "k2"]), st.sampled_from(NOTIFY_POINTS)
    ),
    max_size=8,
)
offer_points = st.sampled_from([None, "offer.stored.open", *NOTIFY_POINTS[1:]])
accept_points = st.sampled_from([None, "offer.stored.accepted", *NOTIFY_POINTS[1:]])


async def scenario(
    store: Store,
    sent: list[tuple[UserId, str, str | None]],
    offer_point: str | None,
    accept_point: str | None,
) -> None:
    clock = FakeClock()
    for user in [*USERS, SELLER, BUYER]:
        await store.put_user(User(user, f"name-{user}", "fr-CA"))
    await store.put_listing(LISTING)
    first = Hub(store, clock)
    await first.outbox.open()
    for user, key, point in sent:
        payload = {"kind": "mention", "room": "listing:l1", "key": key}
        await attempt(point, first.notifier.send([Notice(user, payload, key)]))
    now = to_ms(clock.now())
    offer = make_offer(offer_id="o1", listing=LISTING, buyer_id=BUYER, amount=9_000, now_ms=now)
    await attempt(offer_point, first.negotiations.open(offer, "buyer"))

    def accept(current: Negotiation) -> Negotiation:
        return respond(current, actor_id=SELLER, action=OfferAction.accept, now_ms=now + 1)

    await attempt(accept_point, first.negotiations.change("o1", accept, "seller", Party.seller))
    await check_no_push_without_notification(store, first.outbox)

    clock.advance(1)
    second = Hub(store, clock)  # another hub, started after the first one died
    await second.complete(to_ms(clock.now()))
    await check_whole(store, second.outbox, sent)
    await first.outbox.close()
    await second.outbox.close()


async def inbox(store: Store, user: UserId) -> list[Any]:
    return await store.entries_after(user_room(user), 0, 1000)


async def pushed(outbox: PushOutbox, group: str) -> list[Any]:
    """Every item retained, read by a group of the check's own (a new group starts
    at the oldest item retained; nothing is acked, so nothing is dropped)."""
    got = await outbox.fetch(group, "c", count=1000, wait=0)
    return [d.item for d in got]


async def check_no_push_without_notification(store: Store, outbox: PushOutbox) -> None:
    for item in await pushed(outbox, "before"):
        entry = await store.get_entry(user_room(item.user_id), item.seq)
        assert entry is not None and entry.kind == "notification"
        assert entry.data == item.data


async def check_whole(
    store: Store, outbox: PushOutbox, sent: list[tuple[UserId, str, str | None]]
) -> None:
    wanted = {(user, key) for user, key, _ in sent}
    wanted |= {(SELLER, "offer_received:o1:1"), (BUYER, "offer_accepted:o1:2")}
    stored: dict[tuple[str, str], int] = {}
    for user in [*USERS, SELLER, BUYER]:
        entries = await inbox(store, user)
        keyed = Counter((e.kind, e.client_msg_id) for e in entries)
        assert all(n == 1 for n in keyed.values()), keyed  # nothing twice
        for e in entries:
            if e.kind == "notification":
                stored[(user, str(e.client_msg_id))] = e.seq
        offers = {e.client_msg_id for e in entries if e.kind == "offer"}
        if user in (SELLER, BUYER):
            assert offers == {"offer:o1:1", "offer:o1:2"}
    assert set(stored) == wanted
    # Every notification pushed once (push_when: always), with its own seq.
    items = Counter((item.user_id, item.seq) for item in await pushed(outbox, "after"))
    assert all(n == 1 for n in items.values()), items
    assert set(items) == {(user, seq) for (user, _), seq in stored.items()}
    events = await store.entries_after(EVENTS_ROOM, 0, 100)
    assert [(e.data or {}).get("offer_id") for e in events] == ["o1"]
    assert await store.untold_negotiations(1 << 62, 10) == []


def run_scenario(url: str, **kwargs: Any) -> None:
    async def main() -> None:
        if url.startswith("sqlite"):
            store: Store = open_store(url)
        else:  # a fresh key prefix for each example: nothing left from the last one
            store = RedisStore(url, key_prefix=f"whole{next(prefixes)}")
        await store.open()
        try:
            await scenario(store, **kwargs)
        finally:
            await store.close()

    asyncio.run(main())


@WHOLE
@given(sent=notices, offer_point=offer_points, accept_point=accept_points)
def test_changes_abandoned_at_any_step_are_whole_once_completed_sqlite(
    sent: list[tuple[UserId, str, str | None]],
    offer_point: str | None,
    accept_point: str | None,
) -> None:
    with TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'parley.sqlite3'}"
        run_scenario(url, sent=sent, offer_point=offer_point, accept_point=accept_point)


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_changes_abandoned_at_any_step_are_whole_once_completed_redis(
    request: pytest.FixtureRequest, backend: str
) -> None:
    server: RedisServer = request.getfixturevalue(
        "redis_server" if backend == "redis" else "redis_cluster"
    )
    if backend == "redis":
        server.start()

    @WHOLE
    @given(sent=notices, offer_point=offer_points, accept_point=accept_points)
    def check(
        sent: list[tuple[UserId, str, str | None]],
        offer_point: str | None,
        accept_point: str | None,
    ) -> None:
        run_scenario(server.url, sent=sent, offer_point=offer_point, accept_point=accept_point)

    check()
