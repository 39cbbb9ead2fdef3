"""scripts/soak.py stays working: a 5-second soak of 50 members, and its verdict's checks."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_short_soak_passes_and_checks_what_it_counts(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    argv = [sys.executable, str(SCRIPT), "--minutes", str(5 / 60), "--connections", "50"]
    argv += ["--rate", "40", "--churn", "4", "--json", str(out)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED" in run.stdout
    result = json.loads(out.read_text())
    posts, events, churn = result["posts"], result["events"], result["churn"]
    assert posts["acked"] >= 150 and posts["acked"] == posts["stored"]
    assert posts["missing"] == posts["unacked"] == 0
    assert events["expected"] > posts["acked"]  # listing rooms fan out to 20 members
    assert events["received"] == events["expected"] and events["gaps"] == 0
    assert churn["dropped"] >= 8 and churn["resumed"] >= churn["dropped"]
    assert [s["label"] for s in result["samples"]] == ["start", "end"]
    assert result["samples"][-1]["fds"] > 50  # the hub's, with every member's socket
    assert result["log_errors"] == [] and result["hub_exit"] == 0


def passing_result() -> dict[str, Any]:
    sample = {"label": "start", "at": 0, "rss_kb": 100_000, "fds": 2000}
    return {
        "samples": [sample, sample | {"label": "minute 1"}, sample | {"label": "end"}],
        "posts": {"missing": 0, "double_acks": 0, "unacked": 0, "refused": {}},
        "events": {"expected": 10, "received": 10, "gaps": 0, "repeats": 0, "reloads": 0},
        "reconnected": True,
        "delivered": True,
        "log_errors": [],
        "hub_exit": 0,
    }


FAILURES = [
    (["samples", 2, "rss_kb"], 120_001, "RSS grew +20.0% from minute 1"),
    (["samples", 2, "fds"], 2051, "fds grew by 51 from minute 1"),
    (["posts", "missing"], 1, "1 acknowledged posts missing"),
    (["posts", "unacked"], 1, "1 posts never acknowledged"),
    (["posts", "refused"], {"rate_limited": 2}, "refused: {'rate_limited': 2}"),
    (["events", "received"], 9, "events: 9 of 10"),
    (["events", "gaps"], 1, "1 gaps"),
    (["delivered"], False, "did not all reconnect or catch up"),
    (["log_errors"], ["x ERROR parley.hub boom"], "1 lines at WARNING or above"),
    (["hub_exit"], -9, "the hub exited with -9"),
]


@pytest.mark.parametrize(("path", "value", "words"), FAILURES)
def test_the_verdict_names_each_failed_check(path: list[Any], value: Any, words: str) -> None:
    soak = load_soak()
    assert soak.verdict(passing_result(), minutes=10) == []
    result = copy.deepcopy(passing_result())
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    failed = soak.verdict(result, minutes=10)
    assert len(failed) == 1 and words in failed[0], failed


def test_a_run_under_two_minutes_compares_with_the_start() -> None:
    soak = load_soak()
    result = passing_result()
    result["samples"][1]["rss_kb"] = 130_000  # a first-minute sample is not the baseline
    result["samples"][2]["rss_kb"] = 130_000
    assert soak.verdict(result, minutes=1) == ["RSS grew +30.0% from start"]
    assert soak.verdict(result, minutes=10) == []


def test_log_lines_at_warning_and_above_are_errors_but_slow_consumers() -> None:
    soak = load_soak()
    hub = soak.Hub(redis=False)
    try:
        hub.log_path.write_text(
            "2026-01-01 10:00:00,001 INFO parley.hub hub listening\n"
            "2026-01-01 10:00:01,002 WARNING parley.hub slow consumer closed user=m3\n"
            "2026-01-01 10:00:02,003 ERROR parley.hub internal error serving user=m4\n"
            "Traceback (most recent call last):\n"
        )
        errors, slow = hub.log_lines()
    finally:
        hub.cleanup()
    assert len(errors) == 2 and "internal error" in errors[0]
    assert slow == ["2026-01-01 10:00:01,002 WARNING parley.hub slow consumer closed user=m3"]
