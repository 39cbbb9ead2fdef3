"""A small push gateway for Parley: long-poll the outbox, send, ack.

It follows docs/push.md: fetch with ``GET /v1/push``, hand each unread item to
a push provider (``--provider-url``, which gets the item as a JSON POST; with
none, one line per item on stdout), skip items the member already read, and ack
what it has dealt with. An item it could not send is not acked: Parley hands it
out again after the visibility timeout, so nothing is lost and a member's later
items never overtake it. Errors are retried with capped, jittered backoff;
SIGINT or SIGTERM stops it after the item in hand.

    python examples/push_gateway.py --api http://127.0.0.1:8701 --key KEY \\
        --group fcm --consumer "$(hostname)-1" [--provider-url URL]

Needs Python 3.11+ and aiohttp only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

log = logging.getLogger("push_gateway")

ACK_ATTEMPTS = 5


class Stopped(Exception):
    """SIGINT or SIGTERM arrived while waiting."""


class Fatal(Exception):
    """A mistake retrying cannot fix (a wrong key, a bad group name)."""


class Backoff:
    """Capped exponential delays with jitter, so many gateways don't retry in step."""

    def __init__(self, first: float, most: float) -> None:
        self.first = first
        self.most = most
        self.failures = 0

    def next(self) -> float:
        delay: float = min(self.most, self.first * 2.0**self.failures)
        self.failures = min(self.failures + 1, 32)  # 2**32 times the first: past any cap
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.api = args.api.rstrip("/")
        self.stop = asyncio.Event()
        self.handled = 0  # items sent or skipped, and acked
        self.provider: aiohttp.ClientSession

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        headers = {"Authorization": f"Bearer {self.args.key}"}
        # Two sessions: Parley's key must never reach the provider.
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            aiohttp.ClientSession() as self.provider,
        ):
            try:
                await self._loop(http)
            except Stopped:
                pass
            except Fatal as exc:
                log.error("stopping: %s", exc)
                return 2
        log.info("stopped after %d items", self.handled)
        return 0

    async def _loop(self, http: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.args.backoff, self.args.backoff_max)
        idle_since = loop.time()
        while not self.stop.is_set() and not self._enough():
            wait = self.args.wait
            if self.args.exit_when_idle is not None:
                left = self.args.exit_when_idle - (loop.time() - idle_since)
                if left <= 0:
                    log.info("idle for %.1fs: exiting", self.args.exit_when_idle)
                    return
                wait = min(wait, left)
            count = self.args.count
            if self.args.max_items is not None:  # don't hold items it will not handle
                count = min(count, self.args.max_items - self.handled)
            try:
                items = await self._until_stopped(self._fetch(http, wait, count))
            except (aiohttp.ClientError, TimeoutError, ServerError) as exc:
                log.warning("fetch failed (%s); retrying", exc)
                await self._pause(backoff.next())
                continue
            backoff.reset()
            if items:
                idle_since = loop.time()
                await self._handle(http, items)

    def _enough(self) -> bool:
        return self.args.max_items is not None and self.handled >= self.args.max_items

    async def _handle(self, http: aiohttp.ClientSession, items: list[dict[str, Any]]) -> None:
        done: list[str] = []
        try:
            for item in items:
                if self.stop.is_set():
                    break
                if item["read"]:
                    log.info("skip id=%s user=%s seq=%s (read)", item["id"], item["user_id"],
                             item["seq"])  # fmt: skip
                elif not await self._send(item):
                    # The rest of the batch, this member's later items among
                    # them, comes back after the visibility timeout, in order.
                    break
                done.append(item["id"])
        finally:
            if done:
                await self._ack(http, done)

    async def _fetch(
        self, http: aiohttp.ClientSession, wait: float, count: int
    ) -> list[dict[str, Any]]:
        params = {
            "group": self.args.group,
            "consumer": self.args.consumer,
            "wait": f"{wait:.3f}",
            "count": str(count),
        }
        timeout = aiohttp.ClientTimeout(total=wait + self.args.http_timeout)
        async with http.get(f"{self.api}/v1/push", params=params, timeout=timeout) as response:
            body = await _json_body(response)
        items: list[dict[str, Any]] = body["items"]
        return items

    async def _send(self, item: dict[str, Any]) -> bool:
        """Deliver to the provider; ``False`` when it kept failing."""
        if self.args.provider_url is None:
            print(
                f"push id={item['id']} user={item['user_id']} seq={item['seq']}"
                f" kind={item['kind']} deliveries={item['deliveries']}",
                flush=True,
            )
            return True
        backoff = Backoff(self.args.backoff, self.args.backoff_max)
        timeout = aiohttp.ClientTimeout(total=self.args.http_timeout)
        for attempt in range(1, self.args.send_attempts + 1):
            try:
                async with self.provider.post(
                    self.args.provider_url, json=item, timeout=timeout
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("provider unreachable for id=%s (%s)", item["id"], exc)
            else:
                if status < 300:
                    log.info("sent id=%s user=%s seq=%s", item["id"], item["user_id"], item["seq"])
                    return True
                if 400 <= status < 500 and status not in (408, 429):
                    # Retrying will not help (say, a device token no longer
                    # valid): report it and ack, or it would come back forever.
                    log.warning("provider refused id=%s with %d: dropped", item["id"], status)
                    return True
                log.warning("provider answered %d for id=%s", status, item["id"])
            if attempt < self.args.send_attempts:
                await self._pause(backoff.next())
        log.error("giving up on id=%s for now; Parley will hand it out again", item["id"])
        return False

    async def _ack(self, http: aiohttp.ClientSession, ids: list[str]) -> None:
        backoff = Backoff(self.args.backoff, self.args.backoff_max)
        timeout = aiohttp.ClientTimeout(total=self.args.http_timeout)
        body = {"group": self.args.group, "ids": ids}
        for attempt in range(1, ACK_ATTEMPTS + 1):
            try:
                async with http.post(f"{self.api}/v1/push/ack", json=body, timeout=timeout) as r:
                    await _json_body(r)
                self.handled += len(ids)
                return
            except (aiohttp.ClientError, TimeoutError, ServerError) as exc:
                log.warning("ack failed (%s), attempt %d", exc, attempt)
            if attempt < ACK_ATTEMPTS:
                # Not interrupted by a stop: acking what was sent saves duplicates.
                await asyncio.sleep(backoff.next())
        log.error("could not ack %d items: they will be sent again", len(ids))

    async def _until_stopped(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise Stopped
        return task.result()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        if self.stop.is_set():
            raise Stopped


class ServerError(Exception):
    """Parley answered 5xx (``unavailable``: retry later)."""


async def _json_body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    if response.status >= 500:
        raise ServerError(f"{response.status} {text[:200]}")
    if response.status != 200:
        raise Fatal(f"Parley answered {response.status}: {text[:200]}")
    return json.loads(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--api", default="http://127.0.0.1:8701", help="Parley's internal API")
    p.add_argument("--key", required=True, help="the API key (api_key)")
    p.add_argument("--group", required=True, help="consumer group: one per kind of gateway")
    p.add_argument("--consumer", required=True, help="this process's name, unique in the group")
    p.add_argument("--provider-url", help="POST each item here as JSON; none: print it")
    p.add_argument("--wait", type=float, default=25.0, help="long-poll seconds (0..30)")
    p.add_argument("--count", type=int, default=20, help="items per fetch (1..100)")
    p.add_argument("--send-attempts", type=int, default=5, help="tries per item before giving up")
    p.add_argument("--backoff", type=float, default=0.2, help="first retry delay, seconds")
    p.add_argument("--backoff-max", type=float, default=30.0, help="longest retry delay")
    p.add_argument("--http-timeout", type=float, default=10.0, help="seconds per HTTP call")
    p.add_argument("--max-items", type=int, help="exit after handling this many items")
    p.add_argument(
        "--exit-when-idle", type=float, help="exit after this many seconds without items"
    )
    args = p.parse_args(argv)
    if not 0 <= args.wait <= 30 or not 1 <= args.count <= 100 or args.send_attempts < 1:
        p.error("--wait must be 0..30, --count 1..100, --send-attempts at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    return asyncio.run(Gateway(args).run())


if __name__ == "__main__":
    sys.exit(main())
