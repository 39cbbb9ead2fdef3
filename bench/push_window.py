"""How long a mention's push item waits before a gateway has it: ``python -m bench.push_window``.

A member who posts ``@victim <private words>`` and deletes the comment withdraws the
notification, and a push item no gateway has taken yet never goes out; one already taken
cannot be recalled. This measures the window a deletion has to beat: from the ``post``
reply to a long-polling gateway (``GET /v1/push``, as ``examples/push_gateway.py`` does)
holding the item, and, for comparison, the fastest deletion a script can send (the
``delete`` round trip after the ``post`` reply). Median of ``--runs`` posts, on the
embedded store or ``--store redis://...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from parley.client import ParleyClient
from parley.server.app import App
from parley.server.auth import mint_token
from parley.server.config import load_config

API_KEY = "bench-api-key-of-at-least-32-bytes!!"
SECRET = "bench-jwt-secret-of-at-least-32-bytes!"


async def gateway(api: str, http: aiohttp.ClientSession, got: asyncio.Queue[float]) -> None:
    """Long-polls like a gateway; puts the time each item arrived."""
    query = {"group": "bench", "consumer": "g1", "count": "10", "wait": "5"}
    while True:
        async with http.get(api + "/v1/push", params=query) as response:
            items = (await response.json())["items"]
        now = time.perf_counter()
        if items:
            ids = [item["id"] for item in items]
            async with http.post(api + "/v1/push/ack", json={"group": "bench", "ids": ids}):
                pass
        for _ in items:
            got.put_nowait(now)


async def measure(store: str, runs: int) -> dict[str, list[float]]:
    config = load_config(
        None,
        {},
        ws_host="127.0.0.1",
        ws_port=0,
        api_host="127.0.0.1",
        api_port=0,
        api_key=API_KEY,
        jwt_secret=SECRET,
        store=store,
        log_level="WARNING",
        write_burst=10_000,
        member_write_burst=10_000,
        mention_burst=10_000,
    )
    app = App(config)
    await app.start()
    api = f"http://127.0.0.1:{app.api_port}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    out: dict[str, list[float]] = {"to_gateway": [], "delete_round_trip": []}
    async with aiohttp.ClientSession(headers=headers) as http:
        for user_id, name in (("s1", "sam"), ("h1", "mallory"), ("v1", "victim")):
            async with http.put(f"{api}/v1/users/{user_id}", json={"name": name}) as response:
                assert response.status == 200
        listing = {"seller_id": "s1", "title": "Coat", "price": {"amount": 5000, "currency": "CAD"}}
        async with http.put(f"{api}/v1/listings/L1", json=listing) as response:
            assert response.status == 200
        got: asyncio.Queue[float] = asyncio.Queue()
        poller = asyncio.create_task(gateway(api, http, got))
        url = f"ws://127.0.0.1:{app.ws_port}/"
        mallory = await ParleyClient.connect(url, mint_token(config, "h1", "mallory"))
        try:
            await asyncio.sleep(0.2)  # the gateway's first long-poll is waiting
            for n in range(runs):
                posted = await mallory.post("listing:L1", f"@victim meet me at 5 ({n})")
                replied = time.perf_counter()
                arrived = await asyncio.wait_for(got.get(), 10)
                out["to_gateway"].append((arrived - replied) * 1000)
                start = time.perf_counter()
                await mallory.delete("listing:L1", posted["seq"])
                out["delete_round_trip"].append((time.perf_counter() - start) * 1000)
        finally:
            await mallory.close()
            poller.cancel()
            await app.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--store", default="", help="a store URL (default: a new SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        figures: dict[str, Any] = asyncio.run(measure(store, args.runs))
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"store: {store.split(':')[0]}, {args.runs} posts")
    for name, values in figures.items():
        print(f"{name:18} median {statistics.median(values):7.2f} ms, max {max(values):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
