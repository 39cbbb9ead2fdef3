"""Parley's performance targets, judged from one or more results folders.

``python -m bench.goals bench/results/<stamp> [more folders]`` prints one
Markdown row per target: the figure measured, the bound it is held to (a
ratio against a peer is taken within the same folder, that is, the same
run), and met or missed. Folders are read in order; a later folder's
(workload, server) summary replaces an earlier one's, so a second run with
another ``--w5-rate`` or ``--store-core`` can complete the first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import summarize

Summaries = dict[tuple[str, str], dict[str, Any]]  # (workload, server) -> summary

W4_EMBEDDED = 20_000  # acknowledged durable posts/s
W4_REDIS = 12_000
ACK_P99_MS = 50.0  # at 80 % of the W4 target
IDLE_CONNECTIONS = 100_000
IDLE_BUDGET_MB = 2 * 1024


def load(folders: list[Path]) -> tuple[Summaries, dict[tuple[str, str], Path]]:
    found: Summaries = {}
    where: dict[tuple[str, str], Path] = {}
    for folder in folders:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for line in (folder / "runs.jsonl").read_text().splitlines():
            if line:
                row = json.loads(line)
                groups.setdefault((row["workload"], row["server"]), []).append(row)
        for (workload, server), rows in groups.items():
            found[workload, server] = summarize(server, workload, rows)
            where[workload, server] = folder
    return found, where


def fig(s: Summaries, workload: str, server: str, path: str) -> float | None:
    value: Any = s.get((workload, server))
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Goal:
    name: str
    judge: Callable[[Summaries], tuple[str, str, bool | None]]  # measured, bound, met


def _ratio(
    workload: str, server: str, path: str, peer: str, most: float, unit: str
) -> Callable[[Summaries], tuple[str, str, bool | None]]:
    def judge(s: Summaries) -> tuple[str, str, bool | None]:
        mine, theirs = fig(s, workload, server, path), fig(s, workload, peer, path)
        if mine is None or theirs is None or theirs == 0:
            return "not measured", f"at most {most}x {peer}", None
        ratio = mine / theirs
        measured = f"{mine:,.2f} {unit} against {peer}'s {theirs:,.2f}: {ratio:.2f}x"
        return measured, f"at most {most}x", ratio <= most

    return judge


def _p99_at_most_peer(s: Summaries) -> tuple[str, str, bool | None]:
    mine, theirs = (
        fig(s, "W2", "parley", "latency_ms.p99"),
        fig(s, "W2", "socketio", "latency_ms.p99"),
    )
    if mine is None or theirs is None:
        return "not measured", "at most socketio's", None
    return f"{mine:.2f} ms against socketio's {theirs:.2f} ms", "at most socketio's", mine <= theirs


def _kept_up(server: str) -> Callable[[Summaries], Any]:
    def judge(s: Summaries) -> tuple[str, str, bool | None]:
        row = s.get(("W2", server))
        if row is None or "kept_up" not in row:
            return "not measured", "5,000 posts/s", None
        rate = fig(s, "W2", server, "deliveries_per_s") or 0.0
        offered = float(row.get("params", {}).get("rate", 0))
        p99 = fig(s, "W2", server, "latency_ms.p99") or 0.0
        measured = f"{rate / 2:,.0f} of {offered:,.0f} posts/s delivered, p99 {p99:,.1f} ms"
        if not row["kept_up"]:
            measured += f" (saturated in {row['saturated_runs']} of {row['ok_runs']} runs)"
        return measured, "keeps up with 5,000 posts/s", bool(row["kept_up"]) and offered >= 5_000

    return judge


def _w4(server: str, least: int) -> Callable[[Summaries], Any]:
    def judge(s: Summaries) -> tuple[str, str, bool | None]:
        rate = fig(s, "W4", server, "acked_posts_per_s")
        if rate is None:
            return "not measured", f"at least {least:,} posts/s", None
        return f"{rate:,.0f} acked posts/s", f"at least {least:,}", rate >= least

    return judge


def _ack_p99(server: str, target: int) -> Callable[[Summaries], Any]:
    """The post-to-reply p99 in W5, run at 80 % of the W4 target on this store."""

    def judge(s: Summaries) -> tuple[str, str, bool | None]:
        bound = f"under {ACK_P99_MS:.0f} ms at {0.8 * target:,.0f} posts/s"
        row = s.get(("W5", server))
        p99 = fig(s, "W5", server, "ack_latency_ms.p99")
        sent = fig(s, "W5", server, "achieved_send_rate")
        if row is None or p99 is None or sent is None:
            return "not measured", bound, None
        measured = f"ack p99 {p99:,.1f} ms at {sent:,.0f} posts/s sent"
        if not row.get("kept_up", False):
            measured += " (saturated)"
        met = p99 < ACK_P99_MS and sent >= 0.8 * target * 0.98 and bool(row.get("kept_up"))
        return measured, bound, met

    return judge


def _idle_fits(s: Summaries) -> tuple[str, str, bool | None]:
    per_conn = fig(s, "W3", "parley", "rss_per_conn_kb")
    total = fig(s, "W3", "parley", "server_rss_mb")
    row = s.get(("W3", "parley"))
    if per_conn is None or total is None or row is None:
        return "not measured", f"{IDLE_CONNECTIONS:,} in 2 GiB", None
    connections = int(row.get("params", {}).get("connections", 10_000))
    base = total - per_conn * connections / 1024
    need = base + per_conn * IDLE_CONNECTIONS / 1024
    measured = (
        f"{need:,.0f} MiB: {base:,.0f} MiB at start + {per_conn:.2f} KB x {IDLE_CONNECTIONS:,}"
        f" (extrapolated from {connections:,} connections)"
    )
    return measured, f"at most {IDLE_BUDGET_MB:,} MiB", need <= IDLE_BUDGET_MB


CPU_1M = "server_cpu_s_per_1M"
GOALS = (
    Goal("W2 embedded: CPU per delivery", _ratio("W2", "parley", CPU_1M, "socketio", 1.5, "s/1M")),
    Goal("W2 embedded: p99", _p99_at_most_peer),
    Goal("W2 Redis: keeps up", _kept_up("parley-redis")),
    Goal(
        "W2 Redis: hub CPU per delivery",  # a baseline's hub CPU is its server CPU
        _ratio("W2", "parley-redis", "hub_cpu_s_per_1M", "socketio", 2.0, "s/1M"),
    ),
    Goal("W2 Cluster: keeps up", _kept_up("parley-cluster")),
    Goal(
        "W2 Cluster: hub CPU against one Redis",
        _ratio("W2", "parley-cluster", "hub_cpu_s_per_1M", "parley-redis", 1.15, "s/1M"),
    ),
    Goal("W4 embedded: acked posts/s", _w4("parley", W4_EMBEDDED)),
    Goal("W4 Redis: acked posts/s", _w4("parley-redis", W4_REDIS)),
    Goal("W4 embedded: ack p99 at 80 %", _ack_p99("parley", W4_EMBEDDED)),
    Goal("W4 Redis: ack p99 at 80 %", _ack_p99("parley-redis", W4_REDIS)),
    Goal(
        "W3: bytes per idle connection", _ratio("W3", "parley", "rss_per_conn_kb", "raw", 1, "KB")
    ),
    Goal(
        "W3: CPU per connect", _ratio("W3", "parley", "server_cpu_ms_per_connect", "raw", 1.2, "ms")
    ),
    Goal("W3: 100,000 idle connections", _idle_fits),
    Goal("W1: CPU per delivery", _ratio("W1", "parley", CPU_1M, "raw", 0.7, "s/1M")),
)


def table(s: Summaries, where: dict[tuple[str, str], Path]) -> str:
    out = ["| target | measured | bound | |", "|---|---|---|---|"]
    for goal in GOALS:
        measured, bound, met = goal.judge(s)
        verdict = "not measured" if met is None else ("met" if met else "**missed**")
        out.append(f"| {goal.name} | {measured} | {bound} | {verdict} |")
    out.append("")
    out.append("Folders: " + ", ".join(sorted({f"`{p.name}`" for p in where.values()})))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.goals", description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="results folders, bench/results/<stamp>")
    args = ap.parse_args(argv)
    summaries, where = load(args.folders)
    print(table(summaries, where))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
