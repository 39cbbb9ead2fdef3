"""Members' data rights on the internal HTTP API: the export and the erasure of a member.

Served by ``InternalApi`` behind its API key (``extra_routes``); a
``ParleyError`` raised before the answer starts becomes ``{"error": ...}``
there. The export is streamed: once its first bytes are sent, a store that
stops answering cuts the connection, and the truncated document does not parse,
so a cut export is never mistaken for a whole one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Final

from aiohttp import web

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import ID_RE, UserId
from parley.server.member_erasure import MemberErasures
from parley.server.member_export import ExportSection, export_chunks
from parley.server.store.base import Store

log = logging.getLogger("parley.api")

WRITE_AT: Final = 64 * 1024  # bytes gathered before a write to the socket
DEFAULT_WAIT: Final = 10  # seconds DELETE /v1/users/{id} waits for the erasure by default
MAX_WAIT: Final = 30


def _user_id(request: web.Request) -> UserId:
    value = request.match_info["id"]
    if ID_RE.fullmatch(value) is None:
        raise ParleyError(
            ErrorCode.bad_request, "the id in the path must be of [A-Za-z0-9_.-]{1,64}"
        )
    return UserId(value)


async def _stream(response: web.StreamResponse, chunks: AsyncIterator[bytes]) -> int:
    """Write ``chunks`` in writes of about ``WRITE_AT`` bytes; return the bytes written."""
    pending: list[bytes] = []
    size = written = 0
    async for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= WRITE_AT:
            await response.write(b"".join(pending))
            written += size
            pending, size = [], 0
    await response.write(b"".join(pending))
    await response.write_eof()
    return written + size


def data_rights_routes(
    store: Store,
    clock: Clock,
    erasures: MemberErasures,
    sections: Sequence[ExportSection] = (),
) -> list[web.RouteDef]:
    """``app.add_routes(data_rights_routes(store, clock, erasures))``."""

    async def export(request: web.Request) -> web.StreamResponse:
        user_id = _user_id(request)
        user = await store.get_user(user_id)
        if user is None:
            raise ParleyError(ErrorCode.not_found, f"no member {user_id}")
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/json",
                "Content-Disposition": f'attachment; filename="parley-export-{user_id}.json"',
                "Cache-Control": "no-store",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            written = await _stream(
                response, export_chunks(store, user, to_ms(clock.now()), sections)
            )
        except ParleyError as exc:
            # Too late for an error answer: the cut connection says it instead.
            log.warning("export user=%s cut: %s", user_id, exc.code)
            if request.transport is not None:
                request.transport.close()
            return response
        log.info("export user=%s bytes=%d", user_id, written)
        return response

    async def erase(request: web.Request) -> web.Response:
        user_id = _user_id(request)
        wait = _wait(request.query.get("wait"))
        known = await store.erasure(user_id)
        if known is not None and known.state == "erased":
            return _erased(user_id, known.ts)
        if known is None and await store.get_user(user_id) is None:
            raise ParleyError(ErrorCode.not_found, f"no member {user_id}")
        task = erasures.start(user_id)
        done, _ = await asyncio.wait({task}, timeout=wait)
        if done:
            task.result()  # a store that failed says so (503); asking again resumes
            finished = await store.erasure(user_id)
            return _erased(user_id, 0 if finished is None else finished.ts)
        body = {
            "user_id": user_id,
            "state": "erasing",
            "entries_done": erasures.done.get(user_id, 0),
        }
        return web.json_response(body, status=202)

    return [
        web.get("/v1/users/{id}/export", export),
        web.delete("/v1/users/{id}", erase),
    ]


def _erased(user_id: str, ts: int) -> web.Response:
    return web.json_response({"user_id": user_id, "state": "erased", "erased_at": ts})


def _wait(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WAIT
    try:
        wait = int(raw)
    except ValueError:
        raise ParleyError(ErrorCode.bad_request, "wait must be an integer") from None
    if not 0 <= wait <= MAX_WAIT:
        raise ParleyError(ErrorCode.bad_request, f"wait must be between 0 and {MAX_WAIT}")
    return float(wait)
