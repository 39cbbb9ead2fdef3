"""The moderation part of the Store contract, on every backend: blocks and mutes."""

from __future__ import annotations

import asyncio

import pytest

from parley.protocol.errors import ParleyError
from parley.server.core.model import UserId
from parley.server.store import Store

ANN, BOB, CAT, DAN = UserId("ann"), UserId("bob"), UserId("cat"), UserId("dan")


async def test_blocks_are_bounded_and_listed_most_recent_first(store: Store) -> None:
    assert await store.block(ANN, BOB, 1000, 2) is True
    assert await store.block(ANN, BOB, 2000, 2) is False  # the first time is kept
    assert await store.block(ANN, CAT, 1500, 2) is True
    with pytest.raises(ParleyError) as full:
        await store.block(ANN, DAN, 3000, 2)
    assert full.value.code == "limit_reached"
    assert await store.blocks(ANN, 10) == [(CAT, 1500), (BOB, 1000)]
    assert await store.unblock(ANN, BOB) is True
    assert await store.unblock(ANN, BOB) is False
    assert await store.blocks(ANN, 10) == [(CAT, 1500)]
    assert await store.blocks(BOB, 10) == []


async def test_racing_blocks_never_pass_the_bound(store: Store) -> None:
    others = [UserId(f"m{i}") for i in range(20)]
    results = await asyncio.gather(
        *(store.block(ANN, other, 1000 + i, 5) for i, other in enumerate(others)),
        return_exceptions=True,
    )
    assert sum(r is True for r in results) == 5
    assert all(isinstance(r, ParleyError) for r in results if r is not True)
    assert len(await store.blocks(ANN, 100)) == 5


async def test_blocked_between_finds_a_block_in_either_direction(store: Store) -> None:
    await store.block(ANN, BOB, 1000, 10)  # ann blocks bob
    await store.block(CAT, ANN, 1000, 10)  # cat blocks ann
    assert await store.blocked_between(ANN, [BOB, CAT, DAN]) == {BOB, CAT}
    assert await store.blocked_between(BOB, [ANN]) == {ANN}
    assert await store.blocked_between(DAN, [ANN, BOB]) == set()
    assert await store.blocked_between(ANN, []) == set()


async def test_silencing_says_whether_the_author_is_blocked_and_the_room_muted(
    store: Store,
) -> None:
    assert await store.silencing(ANN, BOB, "listing:L1") == (False, False)
    await store.block(ANN, BOB, 1000, 10)
    assert await store.mute(ANN, "listing:L1", 1000, 10) is True
    assert await store.mute(ANN, "listing:L1", 2000, 10) is False
    assert await store.silencing(ANN, BOB, "listing:L1") == (True, True)
    assert await store.silencing(ANN, CAT, "listing:L2") == (False, False)
    assert await store.silencing(ANN, None, None) == (False, False)
    assert await store.silencing(BOB, ANN, "listing:L1") == (False, False)  # one-way
    assert await store.mutes(ANN, 10) == [("listing:L1", 1000)]
    assert await store.unmute(ANN, "listing:L1") is True
    assert await store.silencing(ANN, BOB, "listing:L1") == (True, False)
