"""The connection cap per member and per address, as plain counting."""

from __future__ import annotations

from parley.server.core.connection_caps import ConnectionCap


def test_connections_are_admitted_up_to_the_cap_then_refused() -> None:
    cap = ConnectionCap(3)
    assert [cap.admit("u1") for _ in range(5)] == [True, True, True, False, False]
    assert cap.held("u1") == 3


def test_each_key_has_its_own_count() -> None:
    cap = ConnectionCap(1)
    assert cap.admit("u1")
    assert cap.admit("u2")
    assert not cap.admit("u1")


def test_a_released_connection_makes_room_and_an_idle_key_is_forgotten() -> None:
    cap = ConnectionCap(2)
    assert cap.admit("u1") and cap.admit("u1")
    cap.release("u1")
    assert cap.admit("u1")
    cap.release("u1")
    cap.release("u1")
    assert cap.held("u1") == 0
    assert len(cap) == 0


def test_a_cap_of_zero_admits_everyone_and_counts_nothing() -> None:
    cap = ConnectionCap(0)
    assert all(cap.admit("10.0.0.1") for _ in range(1000))
    cap.release("10.0.0.1")  # harmless: nothing was counted
    assert len(cap) == 0
