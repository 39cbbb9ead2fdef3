"""What a session opened from an e-mail link may do (R11): one conversation, nothing else.

The landing page of a confirmation e-mail hands the widget a session token
scoped to one order room and one member. A connection made with it may read,
write and watch that room, and nothing else: not the member's inbox, not
another room, not offers. Member tokens have no scope and are not limited here.
"""

from __future__ import annotations

from typing import Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.protocol.messages import (
    Delete,
    Edit,
    History,
    Ping,
    Post,
    Read,
    Request,
    Subscribe,
    Typing,
    Unsubscribe,
)

# The ops a scoped session may use, each on its one room only (``Ping`` names none).
SCOPED_OPS: Final = (Subscribe, Unsubscribe, History, Post, Edit, Delete, Read, Typing, Ping)


def check_in_scope(scope: str, request: Request) -> None:
    """Raise ``forbidden`` unless a session limited to the room ``scope`` may send ``request``."""
    if not isinstance(request, SCOPED_OPS):
        raise ParleyError(ErrorCode.forbidden, "this session opens one conversation only")
    room = getattr(request, "room", scope)
    if room != scope:
        raise ParleyError(ErrorCode.forbidden, f"this session opens {scope} only")
