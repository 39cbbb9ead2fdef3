"""The ops members send, one module per feature, dispatched through one table.

Each handler is ``async def op(hub, conn, request) -> result`` and is found by
the request's type; the hub owns connections, frames and fan-out, the ops own
what a request means.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from parley.server.ops import (
    conversations,
    moderation,
    notifications,
    offers,
    presence,
    rooms,
)

Handler = Callable[..., Awaitable[dict[str, Any]]]

HANDLERS: Final[dict[type, Handler]] = {
    **rooms.HANDLERS,
    **notifications.HANDLERS,
    **offers.HANDLERS,
    **conversations.HANDLERS,
    **presence.HANDLERS,
    **moderation.HANDLERS,
}
