"""Leases, on every backend: one holder at a time for a job every hub runs (the mail sender)."""

from __future__ import annotations

import asyncio

from parley.server.store import Store


async def test_one_holder_at_a_time(store: Store) -> None:
    assert await store.try_lease("job", "hub-a", 60_000)
    assert not await store.try_lease("job", "hub-b", 60_000)
    assert await store.try_lease("job", "hub-a", 60_000)  # renewed by its holder
    assert not await store.try_lease("job", "hub-b", 60_000)


async def test_leases_are_by_name(store: Store) -> None:
    assert await store.try_lease("job", "hub-a", 60_000)
    assert await store.try_lease("other-job", "hub-b", 60_000)


async def test_a_released_lease_goes_to_the_next_holder(store: Store) -> None:
    assert await store.try_lease("job", "hub-a", 60_000)
    await store.release_lease("job", "hub-b")  # not its lease: nothing changes
    assert not await store.try_lease("job", "hub-b", 60_000)
    await store.release_lease("job", "hub-a")
    assert await store.try_lease("job", "hub-b", 60_000)
    assert not await store.try_lease("job", "hub-a", 60_000)


async def test_a_lease_nobody_renews_runs_out(store: Store) -> None:
    assert await store.try_lease("job", "hub-a", 20)
    # Waits for the store's own expiry (a few ms), bounded; no fixed sleep to assert on.
    async with asyncio.timeout(5):
        while not await store.try_lease("job", "hub-b", 60_000):
            await asyncio.sleep(0.01)
    assert not await store.try_lease("job", "hub-a", 60_000)
