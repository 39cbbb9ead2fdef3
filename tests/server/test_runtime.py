"""The interpreter's settings for a hub: collections spaced out, slow ones logged."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from parley.server.runtime import OLD_THRESHOLD, YOUNG_THRESHOLD, SlowLog, tune_gc


@pytest.fixture
def gc_state() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_tune_gc_freezes_start_up_objects_and_spaces_collections(gc_state: None) -> None:
    tune_gc()
    assert gc.get_freeze_count() > 1000  # modules, classes, configuration
    young, _, old = gc.get_threshold()
    assert (young, old) == (YOUNG_THRESHOLD, OLD_THRESHOLD)


def test_a_slow_collection_is_logged_with_its_generation(
    gc_state: None, caplog: pytest.LogCaptureFixture
) -> None:
    slow = SlowLog(threshold_ms=0.0)  # every collection counts as slow
    slow.install()
    try:
        with caplog.at_level(logging.WARNING, logger="parley.runtime"):
            gc.collect()
    finally:
        slow.uninstall()
    assert any("slow gc generation=2" in r.getMessage() for r in caplog.records)
    assert slow._on_gc not in gc.callbacks
