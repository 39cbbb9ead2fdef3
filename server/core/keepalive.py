"""When to ping a quiet connection and when to give it up: one sweep for all of them.

websockets runs a keepalive task per connection (a ``Task``, its coroutine and
a timer: about 0.8 KB each, and one more task to create per connect). The hub
instead sweeps every connection a few times per ``ping_interval`` and asks
``keepalive_step`` what to do with each, from three facts the connection keeps:
whether anything was heard from the peer since the last sweep, since when it
has been quiet, and when a ping went unanswered.

The rules:

- anything heard (a frame, a pong) makes the connection alive again;
- a connection quiet for ``ping_interval`` gets one ping;
- a ping unanswered for ``ping_timeout`` closes the connection (1011).

A busy connection is never pinged: its traffic says it is alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

MIN_TICK: Final = 0.01  # seconds: the shortest sweep period, whatever the settings


class Keepalive(Enum):
    WAIT = "wait"
    PING = "ping"
    CLOSE = "close"


@dataclass(slots=True)
class Liveness:
    """What a connection keeps for the sweep; ``heard`` is set by each read."""

    quiet_since: float
    heard: bool = False
    pinged_at: float | None = None


def sweep_period(ping_interval: float, ping_timeout: float) -> float:
    """Sweeps often enough that a ping and a timeout land within a quarter of their delay."""
    return max(min(ping_interval, ping_timeout) / 4, MIN_TICK)


def keepalive_step(
    state: Liveness, now: float, ping_interval: float, ping_timeout: float
) -> Keepalive:
    """Update ``state`` for a sweep at ``now``; what the hub must do with the connection."""
    if state.heard:
        state.heard = False
        state.quiet_since = now
        state.pinged_at = None
        return Keepalive.WAIT
    if state.pinged_at is None:
        if now - state.quiet_since >= ping_interval:
            state.pinged_at = now
            return Keepalive.PING
        return Keepalive.WAIT
    if now - state.pinged_at >= ping_timeout:
        return Keepalive.CLOSE
    return Keepalive.WAIT
