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
    assert [s["label"] for s in result["samples"]] == ["start", "posting end", "end"]
    end = result["samples"][-1]
    assert end["fds"] > 50  # the hub's, with every member's socket
    assert 0 < end["rss_anon_kb"] < end["rss_kb"] and 0 < end["rss_file_kb"] < end["rss_kb"]
    assert "| RssAnon MiB | RssFile MiB |" in run.stdout
    assert result["log_errors"] == [] and result["hub_exit"] == 0


def passing_result() -> dict[str, Any]:
    sample = {"label": "start", "at": 0, "rss_kb": 120_000, "rss_anon_kb": 100_000, "fds": 2000}
    sample["rss_file_kb"] = 20_000
    minutes = [sample | {"label": f"minute {m}", "at": 60 * m} for m in range(1, 10)]
    posting_end = sample | {"label": "posting end", "at": 601}
    return {
        "samples": [sample, *minutes, posting_end, sample | {"label": "end", "at": 605}],
        "posts": {"missing": 0, "double_acks": 0, "unacked": 0, "refused": {}},
        "events": {"expected": 10, "received": 10, "gaps": 0, "repeats": 0, "reloads": 0},
        "reconnected": True,
        "delivered": True,
        "log_errors": [],
        "hub_exit": 0,
    }


FAILURES = [
    (["samples", -1, "fds"], 2051, "fds grew by 51 from minute 1"),
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
    result["samples"] = [result["samples"][0], *result["samples"][-3:]]  # minute 9 as minute 1
    for s in result["samples"][1:]:
        s["rss_anon_kb"] = 130_000  # a first-minute sample is not the baseline
    assert soak.verdict(result, minutes=1) == ["RssAnon grew +30.0% from start to posting end"]
    assert soak.verdict(result, minutes=10) == []


def test_memory_is_judged_on_rss_anon_when_posting_stops() -> None:
    soak = load_soak()
    result = passing_result()
    for s in result["samples"]:
        s["rss_file_kb"] += 50_000  # a mapped database file growing: not the hub's heap
        s["rss_kb"] += 50_000
    result["samples"][-1]["rss_anon_kb"] = 150_000  # the read-back after posting stopped
    assert soak.verdict(result, minutes=10) == []
    result["samples"][-2]["rss_anon_kb"] = 121_000
    assert soak.verdict(result, minutes=10) == [
        "RssAnon grew +21.0% from minute 1 to posting end",
        "RssAnon did not level off: it grew 20.5 MiB (+21.0% of minute 1's) "
        "from minute 5 to posting end",
    ]


def test_a_growth_over_the_bound_fails_even_when_it_levelled_off() -> None:
    soak = load_soak()
    result = passing_result()
    for s in result["samples"][2:]:
        s["rss_anon_kb"] = 120_001
    assert soak.verdict(result, minutes=10) == ["RssAnon grew +20.0% from minute 1 to posting end"]


def test_a_growth_that_goes_on_through_the_second_half_is_a_leak() -> None:
    soak = load_soak()
    result = passing_result()
    for s in result["samples"][1:-1]:  # 2 % of the baseline a minute: 18 % in all
        s["rss_anon_kb"] += 2_000 * (round(s["at"] / 60) - 1)
    failed = soak.verdict(result, minutes=10)
    assert len(failed) == 1 and "did not level off" in failed[0], failed
    assert "from minute 5 to posting end" in failed[0]
    assert soak.verdict(result, minutes=3) == []  # too short to judge the second half

    levelling = passing_result()  # a cache filling up over the first minutes, then capped
    for s in levelling["samples"][2:-1]:
        s["rss_anon_kb"] += min(15_000, 5_000 * (round(s["at"] / 60) - 1))
    assert soak.verdict(levelling, minutes=10) == []


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
