"""Faults injected into Redis under two hub processes and steady posting.

Each scenario runs real ``parley serve`` processes on a ``redis-server`` of its
own, with members posting through both hubs (retrying what was not
acknowledged with the same ``client_msg_id``) and watchers on both hubs. Each
proves the same three things once the fault is over:

- every acknowledged post is in the log once, under the seq it was
  acknowledged with, and the log is whole (no half-stored entry);
- nothing was acknowledged twice: a retry with the same ``client_msg_id`` is
  answered with the same seq and ``duplicate: true``;
- every hub recovered by itself: posts succeed again through it, ``/readyz``
  says ready, and every watcher saw every seq once, in order, without a reload.

The faults: Redis answering slowly (a paused process, a busy script), Redis
out of memory, and a network cut between one hub and Redis while the other
hub keeps it (``tests/support/cuttable_link.py``). Last, ``/readyz`` during
SIGTERM's drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.client import ConnectionLost, ParleyClient, ParleyError
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.support.cuttable_link import CuttableLink
from tests.support.hubproc import API_KEY, SECRET, HubProcess
from tests.support.redis_server import RedisServer
from tests.support.room_log import assert_stored_once_at_ack, watch, whole_log

pytestmark = pytest.mark.slow

TOKENS = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)
ROOM = "listing:L1"
KEYS = "parley:{listing:L1}"  # the room's keys in Redis (server/store/redis.py)
SOCKET_TIMEOUT = 5.0  # RedisStore's socket_timeout: the longest a hub waits on Redis
ANSWER_BOUND = SOCKET_TIMEOUT + 1.5  # a post is answered within this, fault or not
POSTERS_PER_HUB = 2
WATCHERS_PER_HUB = 2
MAX_POSTS = 400  # per poster: the bound; posting stops once the scenario is over
RETRIES = 600  # attempts per post, 20 ms apart: longer than any fault here
RETRIABLE = ("unavailable", "rate_limited")
# The rate limits are not under test.
SETTINGS: dict[str, Any] = {"write_burst": 10_000, "member_write_burst": 10_000}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        yield session


async def until(condition: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll an async condition, bounded in time; the state it waits for is real."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g}s")
        await asyncio.sleep(0.05)


async def readyz(http: aiohttp.ClientSession, hub: HubProcess) -> tuple[int, Any]:
    async with http.get(hub.api_url + "/readyz") as response:
        return response.status, await response.json()


@dataclass
class Attempt:
    """One request to post: when, through which hub, and how it was answered."""

    text: str
    hub: int
    started: float
    ended: float = 0.0
    outcome: str = ""  # "ok", an error code, "lost" (connection) or "timeout" (client)
    seq: int = 0
    duplicate: bool = False

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Posting:
    """Posters that retry with the same client_msg_id until acknowledged."""

    def __init__(self) -> None:
        self.acks: dict[str, int] = {}  # text (= client_msg_id) -> the seq acknowledged
        self.attempts: list[Attempt] = []
        self.stop = asyncio.Event()

    @property
    def acked(self) -> int:
        return len(self.acks)

    def between(self, start: float, end: float, hub: int | None = None) -> list[Attempt]:
        """Attempts started in [start, end], through ``hub`` if given."""
        return [
            a for a in self.attempts if start <= a.started <= end and (hub is None or a.hub == hub)
        ]

    def refused(self, since: float) -> int:
        """Posts answered ``unavailable`` since ``since``: one sent just before a
        fault began, and held by it, counts too (it is answered within it)."""
        return sum(a.outcome == "unavailable" for a in self.attempts if a.ended >= since)

    async def post(self, client: ParleyClient, who: str, hub: int) -> None:
        for n in range(MAX_POSTS):
            if self.stop.is_set():
                return
            text = f"{who}-{n}"
            self.acks[text] = await self._until_acked(client, text, hub)
            await asyncio.sleep(0.02)  # steady, about 50 posts a second per poster

    async def _until_acked(self, client: ParleyClient, text: str, hub: int) -> int:
        for _ in range(RETRIES):
            attempt = Attempt(text, hub, time.monotonic())
            self.attempts.append(attempt)
            try:
                ack = await client.post(ROOM, text, client_msg_id=text)
            except ConnectionLost:
                attempt.outcome = "lost"
            except TimeoutError:
                attempt.outcome = "timeout"
            except ParleyError as exc:
                attempt.outcome = exc.code
                if exc.code not in RETRIABLE:
                    raise
            else:
                attempt.outcome, attempt.seq = "ok", ack["seq"]
                attempt.duplicate = ack["duplicate"]
                return attempt.seq
            finally:
                attempt.ended = time.monotonic()
            await asyncio.sleep(0.02)
        raise AssertionError(f"{text} was never acknowledged")

    async def grow(self, by: int, timeout: float = 30.0) -> None:
        """Wait until ``by`` more posts are acknowledged (bounded in time)."""
        target = self.acked + by
        deadline = time.monotonic() + timeout
        while self.acked < target:
            assert time.monotonic() < deadline, f"posting stalled at {self.acked}"
            await asyncio.sleep(0.02)


@dataclass
class Fleet:
    """Two hubs, their posters and watchers, and what they saw."""

    hubs: list[HubProcess]
    posting: Posting = field(default_factory=Posting)
    posters: dict[str, ParleyClient] = field(default_factory=dict)
    watched: list[list[dict[str, Any]]] = field(default_factory=list)
    clients: list[ParleyClient] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    streams: list[asyncio.Task[None]] = field(default_factory=list)

    async def member(self, hub: HubProcess, user: str) -> ParleyClient:
        """A client that reconnects by itself, quickly, and resumes with since."""
        client = await ParleyClient.connect(
            hub.ws_url,
            mint_token(TOKENS, user, user),
            reconnect=True,
            max_backoff=0.2,
            request_timeout=ANSWER_BOUND + 2,  # a hub that hangs shows as "timeout"
        )
        self.clients.append(client)
        return client

    async def start_traffic(self) -> None:
        for h, hub in enumerate(self.hubs):
            for i in range(WATCHERS_PER_HUB):
                watcher = await self.member(hub, f"w{h}-{i}")
                await watcher.subscribe(ROOM)
                self.watched.append([])
                watching = watch(watcher, self.watched[-1], timeout=120)
                self.tasks.append(asyncio.create_task(watching))
        for h, hub in enumerate(self.hubs):
            for i in range(POSTERS_PER_HUB):
                who = f"p{h}-{i}"
                self.posters[who] = await self.member(hub, who)
                self.streams.append(
                    asyncio.create_task(self.posting.post(self.posters[who], who, h))
                )

    async def finish(self, http: aiohttp.ClientSession, redis: RedisServer) -> None:
        """Every hub serves again by itself; then the log and every watcher are whole."""
        for hub in self.hubs:
            await until(
                lambda hub=hub: _ready(http, hub), what=f"/readyz of {hub.ws_url} answering 200"
            )
        recovered = time.monotonic()
        await self.posting.grow(10 * len(self.hubs))
        for h in range(len(self.hubs)):
            after = self.posting.between(recovered, time.monotonic(), hub=h)
            assert any(a.outcome == "ok" for a in after), f"hub {h} serves no post after"
        self.posting.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.streams), 60)
        await self.assert_whole(redis)

    async def assert_whole(self, redis: RedisServer) -> None:
        acks = self.posting.acks
        # Asked again with its client_msg_id, the hub answers the same seq.
        for text, seq in list(acks.items())[::7]:
            who = text.rsplit("-", 1)[0]
            again = await self.posters[who].post(ROOM, text, client_msg_id=text)
            assert (again["seq"], again["duplicate"]) == (seq, True), text

        # The log: gap-free, each acknowledged post once, under its acknowledged seq.
        reader = await self.member(self.hubs[0], "reader")
        log = await whole_log(reader, ROOM)
        assert sorted(log) == list(range(1, len(log) + 1)), "the log has a gap"
        assert_stored_once_at_ack(log, acks)
        # Nothing half-stored: every part of an append is there for each seq, no more.
        with redis.client() as admin:
            parts = (
                int(admin.get(f"{KEYS}:seq") or 0),
                admin.hlen(f"{KEYS}:log"),
                admin.zcard(f"{KEYS}:msgs"),
                admin.hlen(f"{KEYS}:idem"),
            )
        assert parts == (len(log),) * 4, parts

        # Every watcher, on either hub, saw every seq once, in order, and no reload.
        last = len(log)
        deadline = time.monotonic() + 30
        while any(not seen or seen[-1].get("seq", 0) < last for seen in self.watched):
            assert time.monotonic() < deadline, "a watcher never caught up"
            await asyncio.sleep(0.05)
        for seen in self.watched:
            assert all(e["event"] == "message" for e in seen), "a watcher was told to reload"
            assert [e["seq"] for e in seen] == list(range(1, last + 1))

    async def close(self) -> None:
        self.posting.stop.set()
        for task in self.tasks + self.streams:
            task.cancel()
        for client in self.clients:
            await client.close()
        for hub in self.hubs:
            hub.stop()


@contextlib.asynccontextmanager
async def fleet(
    tmp_path: Path, http: aiohttp.ClientSession, *stores: str, **settings: Any
) -> AsyncIterator[Fleet]:
    """Hub processes, one per store URL, with traffic through all of them."""
    hubs = [HubProcess(tmp_path, url, **SETTINGS, **settings) for url in stores]
    running = Fleet(hubs)
    try:
        for hub in hubs:
            await asyncio.to_thread(hub.start)  # the loop stays free (a relay may run on it)
        body = {"seller_id": "s1", "title": "Coat", "price": {"amount": 100, "currency": "CAD"}}
        async with http.put(f"{hubs[-1].api_url}/v1/listings/L1", json=body) as response:
            assert response.status == 200
        await running.start_traffic()
        yield running
    finally:
        await running.close()


async def _ready(http: aiohttp.ClientSession, hub: HubProcess) -> bool:
    return (await readyz(http, hub))[0] == 200


async def assert_answered_in_time(attempts: list[Attempt], allowed: set[str]) -> None:
    """Each attempt was answered, within the store's socket timeout, as allowed."""
    assert attempts, "no post was attempted during the fault"
    deadline = max(a.started for a in attempts) + ANSWER_BOUND
    while any(not a.outcome for a in attempts):  # some may still be on their way
        assert time.monotonic() < deadline, "a post was not answered in time"
        await asyncio.sleep(0.05)
    outcomes = {a.outcome for a in attempts}
    assert outcomes <= allowed, outcomes
    slowest = max(a.seconds for a in attempts)
    assert slowest < ANSWER_BOUND, f"a post took {slowest:.1f}s to answer"


# 1. Redis answering slowly.

STALL = 1.5  # seconds Redis does not answer: long enough to be felt, under the socket timeout

# Redis 7 refuses DEBUG unless started with enable-debug-command, which cannot be
# set at run time; a script that spins blocks every client the same way.
BUSY_LUA = """
local t0 = redis.call('TIME')
while true do
  local t = redis.call('TIME')
  if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) >= tonumber(ARGV[1]) then
    return 1
  end
end
"""


def stall(redis: RedisServer, how: str) -> None:
    """Make Redis answer nobody for ``STALL`` seconds (blocking: run in a thread)."""
    with redis.client() as admin:
        if how == "busy-script":
            admin.eval(BUSY_LUA, 0, int(STALL * 1_000_000))
            return
        pid = int(admin.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(STALL)  # the fault itself: a paused process
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("how", ["sigstop", "busy-script"])
async def test_a_redis_that_answers_slowly_delays_posts_and_loses_none(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession, how: str
) -> None:
    async with fleet(tmp_path, http, redis.url, redis.url) as running:
        posting = running.posting
        await posting.grow(40)
        started = time.monotonic()
        await asyncio.to_thread(stall, redis, how)
        ended = time.monotonic()

        during = posting.between(started, ended)
        # Under the socket timeout, a stall only delays: every post succeeds late.
        await assert_answered_in_time(during, {"ok", "unavailable"})
        assert max(a.seconds for a in during) > STALL / 2, "the stall was not felt"
        await running.finish(http, redis)


# 2. Redis out of memory.

HEADROOM = 100_000  # bytes Redis may grow by before it refuses writes


async def test_redis_out_of_memory_refuses_posts_as_unavailable_then_recovers(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    async with fleet(tmp_path, http, redis.url, redis.url) as running:
        posting = running.posting
        await posting.grow(40)
        already = next(iter(posting.acks))  # acknowledged before the limit
        admin = redis.client()
        try:
            admin.config_set("maxmemory-policy", "noeviction")
            used = int(admin.info("memory")["used_memory"])
            started = time.monotonic()
            admin.config_set("maxmemory", used + HEADROOM)
            # Posting fills the headroom; then every post is refused.
            await until(
                lambda: _true(posting.refused(started) >= 20), what="posts refused for memory"
            )
            # A retry of an acknowledged post still gets its seq: the check runs
            # before any write, so it needs no memory.
            who = already.rsplit("-", 1)[0]
            again = await running.posters[who].post(ROOM, already, client_msg_id=already)
            assert (again["seq"], again["duplicate"]) == (posting.acks[already], True)
        finally:
            admin.config_set("maxmemory", 0)
            admin.close()
        ended = time.monotonic()

        await assert_answered_in_time(posting.between(started, ended), {"ok", "unavailable"})
        await running.finish(http, redis)


async def _true(value: bool) -> bool:
    return value


# 3. A network cut between one hub and Redis, while the other hub keeps it.

CUT = 2.5  # seconds hub A cannot reach Redis (reset cut)
SILENT_CUT = SOCKET_TIMEOUT + 3.0  # longer than the socket timeout, with room for a loaded machine


async def test_a_hub_cut_off_from_redis_answers_unavailable_and_catches_up(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    with CuttableLink(redis.port) as link:
        async with fleet(tmp_path, http, link.url, redis.url) as running:
            a, b = running.hubs
            posting = running.posting
            await posting.grow(40)
            started = time.monotonic()
            link.cut_reset()
            try:
                await until(lambda: _not(_ready(http, a)), timeout=CUT, what="hub A not ready")
                assert await _ready(http, b)
                await until(
                    lambda: _true(posting.refused(started) > 0), timeout=CUT, what="a refusal"
                )
                await asyncio.sleep(max(0.0, started + CUT - time.monotonic()))  # the cut lasts
            finally:
                link.heal()
            ended = time.monotonic()

            on_a = posting.between(started, ended, hub=0)
            on_b = posting.between(started, ended, hub=1)
            await assert_answered_in_time(on_a, {"ok", "unavailable"})
            await assert_answered_in_time(on_b, {"ok"})  # hub B was not hurt by A's cut
            assert sum(x.outcome == "ok" for x in on_b) >= 10, "hub B did not keep serving"
            assert link.reset > 0
            # B's posts meanwhile reach A's watchers: resync and gap fill on A.
            await running.finish(http, redis)


async def test_a_silent_cut_longer_than_the_socket_timeout_stores_retries_once(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    with CuttableLink(redis.port) as link:
        async with fleet(tmp_path, http, link.url, redis.url) as running:
            posting = running.posting
            await posting.grow(40)
            started = time.monotonic()
            link.cut_silent()
            try:
                # The appends hub A sent are held on the way, unanswered: after the
                # socket timeout A answers unavailable, though they may run later.
                await until(
                    lambda: _true(posting.refused(started) > 0),
                    timeout=SILENT_CUT,
                    what="a post timed out to unavailable",
                )
                await asyncio.sleep(max(0.0, started + SILENT_CUT - time.monotonic()))
            finally:
                link.heal()  # what was held runs now, after A said unavailable
            ended = time.monotonic()

            on_a = posting.between(started, ended, hub=0)
            await assert_answered_in_time(on_a, {"ok", "unavailable"})
            on_b = posting.between(started, ended, hub=1)
            await assert_answered_in_time(on_b, {"ok"})  # hub B was not hurt by A's cut
            # Refused after the socket timeout: the append had been sent and was
            # held, to run at the heal, before or after its retry (a race). Either
            # way it is stored once, under the seq its retry was acknowledged with.
            timed_out = [x for x in on_a if x.outcome == "unavailable"]
            assert any(x.seconds >= SOCKET_TIMEOUT - 0.5 for x in timed_out), timed_out
            await running.finish(http, redis)


async def _not(condition: Any) -> bool:
    return not await condition


# 4. /readyz while SIGTERM drains.

DRAIN_WINDOW = 3.0
MEMBERS = 6


async def test_readyz_answers_503_draining_as_soon_as_the_drain_begins(
    tmp_path: Path, redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    hub = HubProcess(tmp_path, redis.url, drain_window=DRAIN_WINDOW, shutdown_grace=3.0)
    other = HubProcess(tmp_path, redis.url)
    members: list[ParleyClient] = []
    try:
        for process in (hub, other):
            await asyncio.to_thread(process.start)
        for i in range(MEMBERS):
            token = mint_token(TOKENS, f"u{i}", f"u{i}")
            members.append(await ParleyClient.connect(hub.ws_url, token, reconnect=False))
        assert await readyz(http, hub) == (200, {"status": "ready"})

        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        await until(lambda: _not(_ready(http, hub)), timeout=DRAIN_WINDOW / 2, what="503")
        status, body = await readyz(http, hub)
        # Members are still being moved off: the drain has begun, not ended.
        assert any(m.close_code is None for m in members), "readyz said so only after the drain"
        assert status == 503
        assert body["error"]["code"] == "unavailable"
        assert body["error"]["message"].startswith("draining")
        assert await readyz(http, other) == (200, {"status": "ready"})  # the others stay in

        assert await asyncio.to_thread(hub.proc.wait, DRAIN_WINDOW + 10) == 0
        assert {m.close_code for m in members} == {1012}
    finally:
        for member in members:
            await member.close()
        for process in (hub, other):
            process.stop()
