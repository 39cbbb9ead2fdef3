"""SIGTERM drains: no new connections, 1012 spread over ``drain_window``, nothing lost.

A real ``parley serve`` process, so the signal is the operator's own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from websockets.exceptions import InvalidHandshake

from parley.client import ConnectionLost, ParleyClient, ParleyError
from parley.protocol.errors import CloseCode
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.support.hubproc import API_KEY, SECRET, HubProcess
from tests.support.room_log import whole_log

pytestmark = pytest.mark.slow

TOKENS = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)
ROOM = "listing:L1"
MEMBERS = 40
WINDOW = 2.0  # seconds: short for a test, the mechanism is the same as for 10
GRACE = 5.0


async def member(hub: HubProcess, user: str) -> ParleyClient:
    client = await ParleyClient.connect(hub.ws_url, mint_token(TOKENS, user, user), reconnect=False)
    await client.subscribe(ROOM)
    return client


async def until_closed(client: ParleyClient) -> tuple[float, int | None, list[int]]:
    """When the hub closed it, with what code, and the message seqs it had by then."""
    seqs: list[int] = []
    for _ in range(10_000):  # bounded: far more events than the test posts
        event = await client.next_event(timeout=WINDOW + GRACE + 10)
        if event["event"] == "closed":
            return time.monotonic(), event["code"], seqs
        if event["event"] == "message":
            seqs.append(event["seq"])
    raise AssertionError("never closed")


async def test_sigterm_spreads_1012_over_the_window_and_loses_nothing(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    hub = HubProcess(tmp_path, store, drain_window=WINDOW, shutdown_grace=GRACE)
    hub.start()
    clients: list[ParleyClient] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            body = {"seller_id": "s1", "title": "Coat", "price": {"amount": 100, "currency": "CAD"}}
            async with http.put(f"{hub.api_url}/v1/listings/L1", json=body) as response:
                assert response.status == 200
        clients = [await member(hub, f"u{i}") for i in range(MEMBERS)]
        closes = [asyncio.create_task(until_closed(c)) for c in clients]
        poster = await ParleyClient.connect(
            hub.ws_url, mint_token(TOKENS, "poster", "poster"), reconnect=False
        )
        acked: dict[int, str] = {}

        async def post_until_closed() -> None:
            for n in range(10_000):  # bounded; the drain closes the poster first
                try:
                    ack = await poster.post(ROOM, f"m{n}", client_msg_id=f"m{n}")
                except (ConnectionLost, ParleyError):
                    return
                acked[ack["seq"]] = f"m{n}"
                await asyncio.sleep(0.005)  # a steady stream, not a flood

        posting = asyncio.create_task(post_until_closed())
        for _ in range(1000):  # bounded: a few posts before the signal
            if len(acked) >= 10:
                break
            await asyncio.sleep(0.01)

        signalled = time.monotonic()
        exited = asyncio.create_task(asyncio.to_thread(hub.terminate, WINDOW + GRACE + 10))
        first = await asyncio.wait(closes, return_when=asyncio.FIRST_COMPLETED)
        assert first[0]
        # Draining: the listener is gone at once, while most members are still served.
        with pytest.raises((OSError, InvalidHandshake, ConnectionLost)):
            await ParleyClient.connect(hub.ws_url, mint_token(TOKENS, "late", "late"))
        assert sum(not task.done() for task in closes) > MEMBERS // 2

        results = await asyncio.gather(*closes)
        assert await exited == 0
        took = time.monotonic() - signalled
        await asyncio.wait_for(posting, 10)

        # Every member was told 1012, and the closes were spread over the window.
        assert {code for _, code, _ in results} == {CloseCode.service_restart}
        times = sorted(at - signalled for at, _, _ in results)
        spread = WINDOW * (MEMBERS - 1) / MEMBERS  # the last one's turn
        assert times[-1] - times[0] >= 0.6 * spread
        for quarter in range(4):  # about a quarter of the members in each quarter
            low, high = quarter * WINDOW / 4, (quarter + 1) * WINDOW / 4
            inside = sum(low <= t - times[0] < high for t in times)
            assert MEMBERS // 8 <= inside <= 3 * MEMBERS // 8, (quarter, times)
        assert spread <= took <= WINDOW + GRACE + 5

        # Nothing lost: each member had an unbroken run of the log up to its close.
        for _, _, seqs in results:
            assert seqs == list(range(1, len(seqs) + 1))
    finally:
        for client in clients:
            await client.close()
        hub.stop()

    # And every acknowledged post is in the log, once, after a restart.
    hub.start()
    try:
        reader = await ParleyClient.connect(
            hub.ws_url, mint_token(TOKENS, "reader", "reader"), reconnect=False
        )
        stored = await whole_log(reader, ROOM)
        assert len(stored) == len(set(stored.values()))
        for seq, text in acked.items():
            assert stored[seq] == text
        # Each member resumes where it was closed and finds the rest.
        for i, (_, _, seqs) in enumerate(results):
            back = await ParleyClient.connect(
                hub.ws_url, mint_token(TOKENS, f"u{i}", f"u{i}"), reconnect=False
            )
            resumed = await back.request("subscribe", room=ROOM, since=len(seqs))
            assert seqs + [e["seq"] for e in resumed["missed"]] == sorted(stored)
            await back.close()
        await reader.close()
    finally:
        hub.stop()
