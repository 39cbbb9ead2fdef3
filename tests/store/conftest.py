"""The store contract suite runs once per backend: add a backend to BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from parley.server.store import Store, open_store
from parley.server.store.redis import RedisStore
from tests.support.redis_server import RedisServer

BACKENDS = ["sqlite", "redis", "redis-cluster"]


def redis_backend(request: pytest.FixtureRequest, backend: str) -> Any:
    """The tests' own Redis, or their own Redis Cluster (three masters, three replicas)."""
    return request.getfixturevalue("redis_server" if backend == "redis" else "redis_cluster")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    else:
        redis_server = redis_backend(request, request.param)
        url = redis_server.url
        await redis_server.flushall()
    s = open_store(url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend's URL, empty, for tests that open more than one store on it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    redis_server = redis_backend(request, request.param)
    await redis_server.flushall()
    return str(redis_server.url)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    """A store on ``url``, open for the block, closed after it."""
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """A ``RedisStore`` on the tests' own Redis, emptied first, for Redis-only tests."""
    redis_server.start()
    await redis_server.flushall()
    s = RedisStore(redis_server.url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
