"""The Redis server harness itself (``tests/support/redis_server.py``): a port
taken between its pick and the server's bind moves the server elsewhere, and
the tests never mistake somebody else's Redis for their own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import redis_server
from tests.support.redis_server import PortTaken, RedisServer


def first_pick(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """The next ``free_port()`` answers ``port`` (taken meanwhile), then real ones."""
    picks: Iterator[int] = iter([port])
    real = redis_server.free_port
    monkeypatch.setattr(redis_server, "free_port", lambda: next(picks, 0) or real())


def test_a_port_taken_by_another_redis_is_left_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer(tmp_path / "theirs") as theirs:
        first_pick(monkeypatch, theirs.port)
        with RedisServer(tmp_path / "ours") as ours:
            assert ours.port != theirs.port
            with ours.client() as client, theirs.client() as other:
                assert client.info("server")["process_id"] != other.info("server")["process_id"]


def test_a_port_taken_by_any_listener_moves_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        first_pick(monkeypatch, squatter.getsockname()[1])
        with RedisServer(tmp_path / "ours") as ours:
            assert ours.port != squatter.getsockname()[1]
            port = ours.port
            ours.restart()  # once it ran, it keeps its port
            assert ours.port == port


def test_a_restart_on_a_port_taken_meanwhile_fails_rather_than_moving(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "ours") as ours:
        ours.stop()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", ours.port))
            squatter.listen()
            with pytest.raises(PortTaken):
                ours.start()
