"""The moderators' routes of the internal HTTP API: the review queue and actions.

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
from parley.server.api import _bad, _body, _json, _path_id, _query_int
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import UserId
from parley.server.core.reports import (
    REMOVAL_REASONS,
    REPORT_STATES,
    RESOLVE_ACTIONS,
    Report,
    check_statement,
    report_wire,
)
from parley.server.core.restrictions import check_restriction, restriction_wire
from parley.server.moderation import Moderation
from parley.server.notify import Notifier
from parley.server.store.base import Store

MAX_PAGE: Final = 100  # queue items one GET /v1/reports returns at most
DEFAULT_PAGE: Final = 20


def moderation_routes(
    config: Config, store: Store, clock: Clock, notifier: Notifier
) -> list[web.RouteDef]:
    """``app.add_routes(moderation_routes(config, store, clock, notifier))``."""
    moderation = Moderation(config, store, clock, notifier)

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

    async def found(request: web.Request) -> Report:
        report = await store.get_report(_path_id(request))
        if report is None:
            raise ParleyError(ErrorCode.not_found, "no such report")
        return report

    async def one(request: web.Request) -> web.Response:
        return _json({"report": await with_context(await found(request))})

    async def resolve(request: web.Request) -> web.Response:
        report = await found(request)
        body = await _body(request)
        action = body.choice("action", RESOLVE_ACTIONS)
        given = body.data.get("statement")
        statement = None if given is None else check_statement(given)
        reason = None
        if body.data.get("reason") is not None:
            reason = body.choice("reason", REMOVAL_REASONS)
        restriction = None
        if action == "restrict_member":
            restriction = restriction_of(body.data.get("restriction"))
        resolved, changed = await moderation.resolve(report, action, statement, reason, restriction)
        return _json({"report": await with_context(resolved), "changed": changed})

    async def remove(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        seq = _path_seq(request)
        body = await _body(request)
        reason = body.choice("reason", REMOVAL_REASONS)
        statement = check_statement(body.data.get("statement"))
        return _json(await moderation.remove_message(room, seq, reason, statement))

    def restriction_of(given: object) -> tuple[str, int | None, str]:
        if not isinstance(given, dict):
            raise _bad("restriction must be an object {kind, until?, reason}")
        now = to_ms(clock.now())
        return check_restriction(given.get("kind"), given.get("until"), given.get("reason"), now)

    async def put_restriction(request: web.Request) -> web.Response:
        user_id = _path_id(request)
        kind, until, reason = restriction_of((await _body(request)).data)
        restriction = await moderation.restrict(user_id, kind, until, reason)
        return _json({"restriction": restriction_wire(restriction)})

    async def get_restriction(request: web.Request) -> web.Response:
        restriction = await store.get_restriction(UserId(_path_id(request)))
        if restriction is None or not restriction.active_at(to_ms(clock.now())):
            raise ParleyError(ErrorCode.not_found, "this member is not restricted")
        return _json({"restriction": restriction_wire(restriction)})

    async def delete_restriction(request: web.Request) -> web.Response:
        user_id = _path_id(request)
        return _json({"user_id": user_id, "lifted": await moderation.lift(user_id)})

    return [
        web.put("/v1/users/{id}/restriction", put_restriction),
        web.get("/v1/users/{id}/restriction", get_restriction),
        web.delete("/v1/users/{id}/restriction", delete_restriction),
        web.get("/v1/reports", queue),
        web.get("/v1/reports/{id}", one),
        web.post("/v1/reports/{id}/resolve", resolve),
        web.post("/v1/rooms/{room}/messages/{seq}/remove", remove),
    ]


def _path_seq(request: web.Request) -> int:
    raw = request.match_info["seq"]
    if not raw.isdigit() or not 1 <= int(raw) <= 2**62:
        raise _bad("the seq in the path must be a positive integer")
    return int(raw)
