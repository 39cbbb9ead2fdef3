"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A ``redis-server`` of the tests' own, started once per session.

    A test that stops, kills or restarts it must leave it running.
    """
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of the tests' own (three masters, three replicas), started once
    per session by the first test that asks for it.

    A test that kills a node, restarts one or moves slots must leave it healthy
    (``redis_cluster.wait_healthy()`` passes); tests that break it for good start
    their own ``RedisCluster``.
    """
    # A slow node timeout: on a busy two-core machine a starved master must not be
    # failed over in the middle of a test that did not ask for it.
    directory = Path(tmp_path_factory.mktemp("redis-cluster"))
    with RedisCluster(directory, node_timeout_ms=5000) as cluster:
        yield cluster
