"""The push gateways' routes of the internal HTTP API: fetch, ack, stats.

Served by ``InternalApi`` behind its API key; a ``ParleyError`` raised here
becomes ``{"error": {"code", "message"}}`` with its HTTP status there. The
contract, the same on both stores, is ``docs/push.md``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Final

import orjson
from aiohttp import web

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.store.outbox import Delivery, PushOutbox, check_name

MAX_WAIT: Final = 30.0  # seconds a fetch may long-poll
MAX_COUNT: Final = 100  # items one fetch may ask for
DEFAULT_COUNT: Final = 10
MAX_ACK_IDS: Final = 100
MAX_ID_CHARS: Final = 64
# A long-poll looks this often (seconds) whether its gateway hung up, so that
# items are not handed to a connection nobody reads (they would wait out the
# visibility timeout). aiohttp does not cancel a handler when its client leaves.
GONE_CHECK: Final = 1.0


def push_routes(outbox: PushOutbox) -> list[web.RouteDef]:
    """``app.add_routes(push_routes(outbox))``."""

    async def fetch(request: web.Request) -> web.Response:
        query = request.query
        group = check_name("group", query.get("group", ""))
        consumer = check_name("consumer", query.get("consumer", ""))
        wait = _number(query.get("wait"), "wait", 0.0, MAX_WAIT)
        count = _count(query.get("count"))
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        while True:
            left = max(until - loop.time(), 0.0)
            deliveries = await outbox.fetch(
                group, consumer, count=count, wait=min(left, GONE_CHECK)
            )
            if deliveries or left <= GONE_CHECK or _gone(request):
                break
        return _json({"items": [_delivery_wire(d) for d in deliveries]})

    async def ack(request: web.Request) -> web.Response:
        body = await _object(request)
        group = check_name("group", body.get("group", ""))
        ids = body.get("ids")
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_ACK_IDS
            or not all(isinstance(i, str) and 1 <= len(i) <= MAX_ID_CHARS for i in ids)
        ):
            raise _bad(f"ids must be a list of 1..{MAX_ACK_IDS} item ids")
        return _json({"acked": await outbox.ack(group, ids)})

    async def stats(request: web.Request) -> web.Response:
        group = check_name("group", request.query.get("group", ""))
        return _json({"group": group, **await outbox.stats(group)})

    return [
        # No HEAD: a fetch hands items out, and a HEAD answer has no body to carry them.
        web.get("/v1/push", fetch, allow_head=False),
        web.post("/v1/push/ack", ack),
        web.get("/v1/push/stats", stats, allow_head=False),
    ]


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _delivery_wire(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        **delivery.item.to_wire(),
        "deliveries": delivery.deliveries,
        "read": delivery.read,
    }


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _bad(message: str) -> ParleyError:
    return ParleyError(ErrorCode.bad_request, message)


def _number(raw: str | None, name: str, default: float, most: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= most:  # also refuses nan
        raise _bad(f"{name} must be a number of seconds from 0 to {most:g}")
    return value


def _count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_COUNT
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_COUNT):
        raise _bad(f"count must be an integer from 1 to {MAX_COUNT}")
    return int(raw)


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _bad("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad("the body must be a JSON object")
    return data
