"""The five workloads of the suite, with their full and ``--quick`` sizes.

W1 fan-out, W2 many small rooms, W3 idle connections, W4 durable posts
(Parley only: the baselines store nothing), W5 W2's shape at half of Parley's
saturation rate. W4 uses W2's shape (rooms of two, 4,000 connections) in a
closed loop, so that its rate is the rate at which Parley saturates in W2 and
half of it is a load W5 can hold. Which servers run each one by default is in ``SERVERS``.
"""

from __future__ import annotations

from typing import Any

TEXT_BYTES = 150  # every posted text, send timestamp included

FULL: dict[str, dict[str, Any]] = {
    "W1": {"watchers": 1000, "messages": 2000, "window": 4, "timeout_s": 120},
    "W2": {"connections": 4000, "posts_per_conn": 20, "rate": 5000, "drain_timeout_s": 60},
    "W3": {"connections": 10000, "warm": 200, "rooms": 100, "hold_s": 5},
    "W4": {"connections": 4000, "posts_per_conn": 10, "window": 1, "timeout_s": 120},
    "W5": {
        "connections": 4000,
        "posts_per_conn": 20,  # at most; see w5_posts_per_conn
        "rate": None,
        "seconds": 20,
        "drain_timeout_s": 60,
    },
}

QUICK: dict[str, dict[str, Any]] = {
    "W1": {"watchers": 50, "messages": 200, "window": 4, "timeout_s": 20},
    "W2": {"connections": 200, "posts_per_conn": 5, "rate": 1000, "drain_timeout_s": 20},
    "W3": {"connections": 500, "warm": 50, "rooms": 10, "hold_s": 1},
    "W4": {"connections": 200, "posts_per_conn": 5, "window": 1, "timeout_s": 20},
    "W5": {
        "connections": 200,
        "posts_per_conn": 5,
        "rate": None,
        "seconds": 2,
        "drain_timeout_s": 20,
    },
}

# W5's rate when no Parley W4 (embedded store) result is at hand: half of W4's target.
W5_FALLBACK_RATE = {"full": 10000, "quick": 1000}

SERVERS: dict[str, tuple[str, ...]] = {
    "W1": ("raw", "socketio", "parley"),
    "W2": ("raw", "socketio", "parley", "parley-redis", "parley-cluster", "parley-redis-2hubs"),
    "W3": ("raw", "socketio", "parley"),
    "W4": ("parley", "parley-redis", "parley-cluster"),
    "W5": ("raw", "socketio", "parley", "parley-redis"),
}

ALL = tuple(FULL)


def w5_posts_per_conn(params: dict[str, Any]) -> int:
    """W2's posts per connection, fewer when the rate is low, so a W5 run lasts about
    ``seconds`` and a full suite stays under 20 minutes whatever Parley's rate."""
    fit = round(params["rate"] * params["seconds"] / params["connections"])
    return int(max(2, min(params["posts_per_conn"], fit)))


def expected_seconds(workload: str, params: dict[str, Any]) -> float:
    """A generous bound on one run of the load generator, for its watchdog."""
    if workload in ("W2", "W5"):
        posts = params["connections"] * params["posts_per_conn"]
        return 90.0 + float(posts / params["rate"] + params["drain_timeout_s"])
    if workload == "W3":
        return 180.0 + float(params["hold_s"]) + params["connections"] / 500
    return 60.0 + float(params["timeout_s"])
