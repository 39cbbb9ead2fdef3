"""The interpreter's settings for a long-running hub: garbage collection and slow-step logs.

A hub holds many long-lived objects (about seventy per connection, in
``websockets`` and asyncio) and makes many short-lived ones per message.
With CPython's default thresholds (700, 10, 10) a young collection runs every
few hundred allocations, objects that live a few milliseconds (a post waiting
for its commit) survive two of them and are promoted to the oldest
generation, and full collections, which walk every live object, follow every
few seconds: 250 to 380 ms with a few thousand connections, long enough to be
every p99 spike of a loaded hub. So, once started:

- the objects of start-up (modules, classes, configuration) are frozen out of
  every collection (``gc.freeze``);
- a young collection waits for ``YOUNG_THRESHOLD`` net allocations, so what a
  message allocates is freed by reference counting before any collection sees
  it, and little is promoted;
- a full collection waits for ``OLD_THRESHOLD`` middle-generation ones (and
  CPython's own rule: a quarter more long-lived objects than at the last one).

Cyclic garbage is still collected, only later; memory stays bounded because
connections and messages are freed by reference counting. For a closed
connection that takes ``hub.HubConnection``, which breaks the two reference
cycles websockets leaves on it; without it, every closed connection waited
for a full collection (the soak in ``docs/reliability.md`` measured it).

With ``slow_log_ms`` set, every collection and every store commit slower than
that is logged, with its duration, to find what stalls a hub.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from typing import Any, Final

log = logging.getLogger("parley.runtime")

YOUNG_THRESHOLD: Final = 50_000  # net allocations before a young collection
MIDDLE_THRESHOLD: Final = 20  # young collections before a middle one
OLD_THRESHOLD: Final = 100  # middle collections before a full one is considered


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the limit now in force.

    Every connection is a file descriptor, and many systems start a service
    with a soft limit of 1,024: a hub would refuse its 1,000th member with
    ``EMFILE`` while the hard limit (what the operator allowed, e.g. systemd's
    ``LimitNOFILE``) is far higher. Raising the soft limit up to the hard one
    needs no privilege (Go's runtime does the same at start).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # a sandbox may refuse: keep what we have
            log.warning("open files limit left at %d: %s", soft, exc)
    log.info("open files limit %d", soft)
    return soft


def tune_gc() -> None:
    """Freeze what start-up made and space collections out (see the module's docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


class SlowLog:
    """Logs collections slower than ``threshold_ms``; the store times its own commits."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took >= self.threshold:
            log.warning(
                "slow gc generation=%d took_ms=%.1f collected=%d tracked=%d",
                info["generation"],
                took * 1000,
                info["collected"],
                len(gc.get_objects(info["generation"])),
            )
