"""The keepalive sweep's rules, on a fake clock: no connection, no sleeping."""

from __future__ import annotations

from parley.server.core.keepalive import Keepalive, Liveness, keepalive_step, sweep_period

INTERVAL, TIMEOUT = 20.0, 10.0


def steps(state: Liveness, times: list[float]) -> list[Keepalive]:
    return [keepalive_step(state, t, INTERVAL, TIMEOUT) for t in times]


def test_a_quiet_connection_is_pinged_once_then_closed_without_a_pong() -> None:
    state = Liveness(quiet_since=0.0)
    assert steps(state, [5.0, 19.9, 20.0, 25.0, 29.9, 30.0]) == [
        Keepalive.WAIT,
        Keepalive.WAIT,
        Keepalive.PING,  # quiet for ping_interval
        Keepalive.WAIT,  # one ping, not one per sweep
        Keepalive.WAIT,
        Keepalive.CLOSE,  # no pong within ping_timeout
    ]


def test_a_pong_makes_it_alive_again() -> None:
    state = Liveness(quiet_since=0.0)
    assert steps(state, [20.0]) == [Keepalive.PING]
    state.heard = True  # the pong
    assert steps(state, [25.0, 44.9, 45.0]) == [Keepalive.WAIT, Keepalive.WAIT, Keepalive.PING]


def test_a_busy_connection_is_never_pinged() -> None:
    state = Liveness(quiet_since=0.0)
    actions = []
    for t in range(5, 200, 5):
        state.heard = True  # a frame in every period
        actions.append(keepalive_step(state, float(t), INTERVAL, TIMEOUT))
    assert set(actions) == {Keepalive.WAIT}


def test_the_sweep_period_follows_the_shorter_delay() -> None:
    assert sweep_period(20.0, 20.0) == 5.0
    assert sweep_period(20.0, 2.0) == 0.5
    assert sweep_period(0.001, 0.001) == 0.01  # never a busy loop
