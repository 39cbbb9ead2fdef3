"""The moderators' routes of the internal HTTP API: the review queue.

Served by ``InternalApi`` behind its API key, like the push gateways' routes;
a ``ParleyError`` raised here becomes ``{"error": {"code", "message"}}`` there.
The model and the flows are ``docs/moderation.md``.

A queue item shows the reported message as it was first reported (a snapshot,
kept as evidence) and its context read from the room when it is served: the
messages before it as they are now, so a message deleted since shows deleted.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.api import _bad, _json, _path_id, _query_int
from parley.server.config import Config
from parley.server.core.reports import REPORT_STATES, Report, report_wire
from parley.server.store.base import Store

MAX_PAGE: Final = 100  # queue items one GET /v1/reports returns at most
DEFAULT_PAGE: Final = 20


def moderation_routes(config: Config, store: Store) -> list[web.RouteDef]:
    """``app.add_routes(moderation_routes(config, store))``."""

    async def with_context(report: Report) -> dict[str, Any]:
        before = await store.history(report.room, report.seq, config.report_context)
        wire = report_wire(report)
        wire["context"] = [entry.to_wire() for entry in reversed(before)]
        return wire

    async def queue(request: web.Request) -> web.Response:
        state = request.query.get("state", "open")
        if state not in REPORT_STATES:
            raise _bad(f"state must be one of {', '.join(sorted(REPORT_STATES))}")
        after = _query_int(request, "after", 0, 0, 2**62)
        limit = _query_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        found = await store.reports(state, after, limit)
        items = [await with_context(report) for report in found]
        next_after = found[-1].number if found else after
        return _json({"reports": items, "next": next_after, "more": len(found) == limit})

    async def one(request: web.Request) -> web.Response:
        report = await store.get_report(_path_id(request))
        if report is None:
            raise ParleyError(ErrorCode.not_found, "no such report")
        return _json({"report": await with_context(report)})

    return [
        web.get("/v1/reports", queue),
        web.get("/v1/reports/{id}", one),
    ]
