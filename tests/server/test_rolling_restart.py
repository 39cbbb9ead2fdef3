"""A rolling restart of two hubs on one Redis, under steady posting.

Hub A is drained (SIGTERM) and started again, then hub B, while members post
through both and retry what was not acknowledged with the same
``client_msg_id``. Afterwards: every acknowledged post is in the log once,
under the seq it was acknowledged with; every watcher saw the room's seqs
without a gap (the Python client resumes with ``since``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.client import ConnectionLost, ParleyClient, ParleyError
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.support.hubproc import API_KEY, SECRET, HubProcess
from tests.support.redis_server import RedisServer
from tests.support.room_log import assert_stored_once_at_ack, watch, whole_log

pytestmark = pytest.mark.slow

TOKENS = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)
ROOM = "listing:L1"
POSTERS_PER_HUB = 3
WATCHERS_PER_HUB = 3
MAX_POSTS = 150  # per poster: the bound; posting stops after the restarts
RETRIES = 500  # attempts per post; a restart takes a few seconds at 20 ms apart
RETRIABLE = ("unavailable", "rate_limited")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


async def member(hub: HubProcess, user: str) -> ParleyClient:
    """A client that reconnects by itself, quickly, and resumes with since."""
    return await ParleyClient.connect(
        hub.ws_url,
        mint_token(TOKENS, user, user),
        reconnect=True,
        max_backoff=0.2,
        request_timeout=3.0,
    )


class Posting:
    """Posters that retry with the same client_msg_id until acknowledged."""

    def __init__(self, room: str = ROOM) -> None:
        self.room = room
        self.acks: dict[str, int] = {}  # text (= client_msg_id) -> the seq acknowledged
        self.stop = asyncio.Event()

    @property
    def acked(self) -> int:
        return len(self.acks)

    async def post(self, client: ParleyClient, who: str) -> None:
        for n in range(MAX_POSTS):
            if self.stop.is_set():
                return
            text = f"{who}-{n}"
            self.acks[text] = await self._until_acked(client, text)
            await asyncio.sleep(0.02)  # steady, about 50 posts a second per poster

    async def _until_acked(self, client: ParleyClient, text: str) -> int:
        for _ in range(RETRIES):
            try:
                ack = await client.post(self.room, text, client_msg_id=text)
            except (ConnectionLost, TimeoutError):
                pass
            except ParleyError as exc:
                if exc.code not in RETRIABLE:
                    raise
            else:
                seq: int = ack["seq"]
                return seq
            await asyncio.sleep(0.02)
        raise AssertionError(f"{text} was never acknowledged")

    async def grow(self, by: int, timeout: float = 30.0) -> None:
        """Wait until ``by`` more posts are acknowledged (bounded in time)."""
        target = self.acked + by
        deadline = time.monotonic() + timeout
        while self.acked < target:
            assert time.monotonic() < deadline, f"posting stalled at {self.acked}"
            await asyncio.sleep(0.02)


async def restart(hub: HubProcess) -> None:
    assert await asyncio.to_thread(hub.terminate, 30) == 0
    await asyncio.to_thread(hub.start)


async def test_a_rolling_restart_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, redis: RedisServer
) -> None:
    settings: dict[str, Any] = {
        "drain_window": 1.0,
        "shutdown_grace": 3.0,
        "write_burst": 10_000,
        "member_write_burst": 10_000,
    }
    hubs = [HubProcess(tmp_path, redis.url, **settings) for _ in range(2)]
    clients: list[ParleyClient] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for hub in hubs:
            hub.start()
        a, b = hubs
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            body = {"seller_id": "s1", "title": "Coat", "price": {"amount": 100, "currency": "CAD"}}
            async with http.put(f"{a.api_url}/v1/listings/L1", json=body) as response:
                assert response.status == 200

        watched: list[list[dict[str, Any]]] = []
        for h, hub in enumerate(hubs):
            for i in range(WATCHERS_PER_HUB):
                watcher = await member(hub, f"w{h}-{i}")
                await watcher.subscribe(ROOM)
                clients.append(watcher)
                watched.append([])
                tasks.append(asyncio.create_task(watch(watcher, watched[-1])))
        posting = Posting()
        posters: dict[str, ParleyClient] = {}
        streams = []
        for h, hub in enumerate(hubs):
            for i in range(POSTERS_PER_HUB):
                who = f"p{h}-{i}"
                posters[who] = await member(hub, who)
                clients.append(posters[who])
                streams.append(asyncio.create_task(posting.post(posters[who], who)))

        await posting.grow(60)
        await restart(a)
        await posting.grow(60)  # posting goes on through A's clients, back on A
        await restart(b)
        await posting.grow(60)
        posting.stop.set()
        await asyncio.wait_for(asyncio.gather(*streams), 60)

        # Asked again with its client_msg_id, the hub answers the same seq.
        for text, seq in list(posting.acks.items())[::10]:
            who = text.rsplit("-", 1)[0]
            again = await posters[who].post(ROOM, text, client_msg_id=text)
            assert (again["seq"], again["duplicate"]) == (seq, True), text

        # The log: gap-free, each acknowledged post once, under its acknowledged seq.
        reader = await member(a, "reader")
        clients.append(reader)
        log = await whole_log(reader, ROOM)
        assert sorted(log) == list(range(1, len(log) + 1))
        assert_stored_once_at_ack(log, posting.acks)

        # Every watcher saw every seq once, in order, across both restarts.
        last = max(posting.acks.values())
        deadline = time.monotonic() + 30
        while any(not seen or seen[-1].get("seq", 0) < last for seen in watched):
            assert time.monotonic() < deadline, "a watcher never caught up"
            await asyncio.sleep(0.05)
        for seen in watched:
            assert all(e["event"] == "message" for e in seen), "a watcher was told to reload"
            seqs = [e["seq"] for e in seen]
            assert seqs[:last] == list(range(1, last + 1))
    finally:
        for task in tasks:
            task.cancel()
        for client in clients:
            await client.close()
        for hub in hubs:
            hub.stop()
