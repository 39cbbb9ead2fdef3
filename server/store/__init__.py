"""Stores: the contract (``base``) and its backends, picked by URL with ``open_store``.

The backends are imported only when picked, so that the contract never depends
on them and a hub on SQLite never imports redis-py.
"""

from parley.server.store.base import Fanout, Store, StoreUnavailable
from parley.server.store.redis_url import REDIS_SCHEMES

__all__ = ["Fanout", "Store", "StoreUnavailable", "open_store"]


def open_store(url: str, **options: object) -> Store:
    """Pick a store by URL: ``sqlite:///relative/path``, ``sqlite:////absolute/path``
    (SQLAlchemy's convention), ``redis://host:port/db`` or, for a Redis Cluster,
    ``redis+cluster://host:port,host:port/`` (any of its nodes; ``rediss+cluster`` for TLS)."""
    scheme = url.partition("://")[0]
    if scheme == "sqlite":
        from parley.server.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), **options)  # type: ignore[arg-type,no-any-return,unused-ignore]
    if scheme in REDIS_SCHEMES:
        from parley.server.store.redis import RedisStore

        return RedisStore(url, **options)  # type: ignore[arg-type,no-any-return,unused-ignore]
    raise ValueError(f"store: unsupported URL scheme {scheme!r} (use sqlite:// or redis://)")
