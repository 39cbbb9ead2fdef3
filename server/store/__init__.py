"""Storage and fan-out behind one interface: embedded SQLite and Redis."""

from server.store.base import Fanout, Store, StoreUnavailable, open_store

__all__ = ["Fanout", "Store", "StoreUnavailable", "open_store"]
