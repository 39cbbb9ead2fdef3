"""Machine facts and the Markdown table of a run.

``python -m bench.report bench/results/<stamp>`` prints the table again from
that folder's ``runs.jsonl`` and ``machine.json``, and draws one SVG chart per
workload into ``<stamp>/charts`` (``--charts DIR`` elsewhere; see ``charts.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.targets import BENCH

# ------------------------------------------------------------------ summary ---

SUMMARY_METRICS = (
    "deliveries_per_s",
    "server_cpu_s_per_1M",
    "hub_cpu_s_per_1M",
    "store_cpu_s_per_1M",
    "loadgen_cpu_s_per_1M",
    "server_cpu_util",
    "loadgen_cpu_util",
    "latency_ms.p50",
    "latency_ms.p99",
    "latency_ms.p999",
    "latency_ms.max",
    "ack_latency_ms.p50",
    "ack_latency_ms.p99",
    "ack_latency_ms.p999",
    "server_rss_mb",
    "avg_frame_bytes",
    "achieved_send_rate",
    "max_send_lag_ms",
    "acked_posts_per_s",
    "server_cpu_s_per_1M_posts",
    "hub_cpu_s_per_1M_posts",
    "rss_per_conn_kb",
    "connect_s",
    "connects_per_s",
    "server_cpu_ms_per_connect",
    "loadgen_cpu_ms_per_connect",
    "idle_server_cpu_util",
    "server_core_other_util",
)


def _get(row: dict[str, Any], path: str) -> float | None:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _put(out: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        out = out.setdefault(p, {})
    out[leaf] = value


def summarize(server: str, workload: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and [min, max] of the ok runs (of the incomplete ones when none is ok)."""
    ok = [r for r in rows if r["status"] == "ok"]
    out: dict[str, Any] = {
        "server": server,
        "workload": workload,
        "runs": len(rows),
        "ok_runs": len(ok),
    }
    if not rows:
        return out
    out["status"] = "ok" if len(ok) == len(rows) else "/".join(sorted({r["status"] for r in rows}))
    notes = [r.get("first_error") or r.get("error") for r in rows if r["status"] != "ok"]
    if notes:
        out["notes"] = sorted({str(n) for n in notes if n})
    if "params" in rows[0]:
        out["params"] = rows[0]["params"]
    basis = ok or [r for r in rows if r["status"] == "incomplete"]
    if not basis:
        return out
    out["basis"] = "ok" if ok else "incomplete"
    spread: dict[str, list[float]] = {}
    for metric in SUMMARY_METRICS:
        values = [v for v in (_get(r, metric) for r in basis) if v is not None]
        if values:
            _put(out, metric, round(statistics.median(values), 4))
            spread[metric] = [round(min(values), 4), round(max(values), 4)]
    if "target_rate" in basis[0]:
        # Runs where the server kept up with the offered rate (2 deliveries per post).
        kept = sum(r["deliveries_per_s"] >= 1.9 * r["target_rate"] for r in basis)
        out["kept_up"] = kept == len(basis)
        out["saturated_runs"] = len(basis) - kept
    out["spread"] = spread
    return out


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _npm_version(*paths: str) -> str:
    """Version of the first of these node_modules paths that is installed."""
    for name in paths:
        try:
            return str(
                json.loads((BENCH / "node_modules" / name / "package.json").read_text())["version"]
            )
        except (OSError, ValueError, KeyError):
            continue
    return "?"


def _py_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _redis_version() -> str:
    out = _cmd(["redis-server", "--version"])  # "Redis server v=7.0.15 sha=..."
    return out.split(" v=")[1].split()[0] if " v=" in out else "?"


def machine_info() -> dict[str, Any]:
    model = "?"
    for line in _cmd(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _cmd(["node", "--version"]),
        "redis": _redis_version(),
        "websockets": _py_version("websockets"),
        "uvloop": _py_version("uvloop"),
        "orjson": _py_version("orjson"),
        "socket.io": _npm_version("socket.io"),
        "engine.io": _npm_version("engine.io"),
        "ws (in engine.io)": _npm_version("engine.io/node_modules/ws", "ws"),
        # The Parley code measured: a commit, "-dirty" when the tree had uncommitted changes.
        "parley_commit": _cmd(["git", "-C", str(BENCH.parent), "describe", "--always", "--dirty"]),
    }


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        if abs(value) >= 10000:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return str(value)


def progress_line(row: dict[str, Any]) -> str:
    head = f"  {row['workload']} {row['server']:<12} #{row['repeat']} {row['status']:<11}"
    if row["status"] in ("unavailable", "error"):
        return f"{head} {row.get('error', '')}"
    if row["workload"] == "W3":
        return (
            f"{head} {row['connections']} conns in {row['connect_s']:.2f}s, "
            f"{row['rss_per_conn_kb']:.1f} KB/conn, rss {row['server_rss_mb']:.0f} MB"
        )
    lat = row.get("latency_ms") or {}
    text = (
        f"{head} {row['deliveries_per_s']:,.0f} deliv/s, server {row['server_cpu_s_per_1M']:.2f} "
        f"cpu-s/1M ({row['server_cpu_util']:.0%} busy), loadgen {row['loadgen_cpu_s_per_1M']:.2f} "
        f"cpu-s/1M ({row['loadgen_cpu_util']:.0%}), p50/p99/p999 {lat.get('p50', 0):.2f}/"
        f"{lat.get('p99', 0):.2f}/{lat.get('p999', 0):.2f} ms"
    )
    if "acked_posts_per_s" in row:
        text += f", {row['acked_posts_per_s']:,.0f} acked posts/s"
    if row.get("first_error"):
        text += f" [{row['errors']} errors, first: {row['first_error']}]"
    return text


def _spread(s: dict[str, Any], metric: str, digits: int = 1) -> str:
    median: Any = s
    for part in metric.split("."):
        median = median.get(part) if isinstance(median, dict) else None
    lo_hi = s.get("spread", {}).get(metric)
    if median is None:
        return "-"
    if not lo_hi or s.get("ok_runs", 0) < 2:
        return _f(median, digits)
    return f"{_f(median, digits)} [{_f(lo_hi[0], digits)}, {_f(lo_hi[1], digits)}]"


def marks(s: dict[str, Any]) -> list[str]:
    """What qualifies a summary's figures: runs that failed, runs that saturated."""
    out = []
    if s.get("ok_runs", 0) < s.get("runs", 0):
        out.append(f"{s['ok_runs']}/{s['runs']} runs ok")
    if s.get("saturated_runs"):
        n, total = s["saturated_runs"], s.get("ok_runs") or s.get("runs", 0)
        out.append("saturated" if n >= total else f"saturated in {n}/{total} runs")
    return out


def _label(s: dict[str, Any], footnotes: list[str]) -> tuple[str, str | None]:
    """The row's first cell, and the text that replaces its figures when it has none."""
    label = s["server"]
    # One line each: an error may quote a log's last lines, and a table row is one line.
    notes = [" ".join(str(note).split()) for note in s.get("notes", [])]
    if s.get("status") == "unavailable":
        return label, "pending: " + "; ".join(notes or ["not run"])
    if "basis" not in s:
        return label, f"{s.get('status', 'not run')}: " + "; ".join(notes)
    if s.get("ok_runs", 0) < s.get("runs", 0):
        for note in notes:
            footnotes.append(f"{s['server']}, {s['workload']}: {note}")
    if marks(s):
        label += " (" + ", ".join(marks(s)) + ")"
    return label, None


TITLES = {
    "W1": "W1 fan-out: 1 room, {watchers} watchers, {messages} posts, window {window}",
    "W2": "W2 many small rooms: {connections} connections in rooms of two, "
    "{posts_per_conn} posts each, {rate} posts/s",
    "W3": "W3 idle: {connections} authenticated, subscribed, idle connections",
    "W4": "W4 durable posts: {connections} connections in rooms of two, window {window}, "
    "{posts_per_conn} posts each",
    "W5": "W5 latency under load: W2's shape at {rate} posts/s",
}


def params_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The workload's parameters, from the first summary of it that has them."""
    return next((s.get("params") for s in rows if s.get("params")), None) or {}


def title(workload: str, params: dict[str, Any]) -> str:
    """The heading of a workload's table (and chart), filled in with its parameters."""
    try:
        return TITLES[workload].format(**params)
    except (KeyError, ValueError):
        return TITLES[workload].split(":")[0]


def markdown(summaries: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    by_w: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        by_w.setdefault(s["workload"], []).append(s)
    m = machine
    out = [
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, Linux {m.get('kernel')}; "
        f"Python {machine.get('python')}, websockets {machine.get('websockets')}, uvloop "
        f"{machine.get('uvloop')}, orjson {machine.get('orjson')}; Node {machine.get('node')}, "
        f"socket.io {machine.get('socket.io')} (engine.io {machine.get('engine.io')}, ws "
        f"{machine.get('ws (in engine.io)')}); redis-server {machine.get('redis')}.",
        "",
        f"Command: `{machine.get('command', 'python -m bench.run')}`. Medians over the repeats, "
        "[min, max] in brackets.",
        "",
    ]
    traffic_cols = (
        "deliveries/s",
        "server CPU s / 1M deliveries",
        "hub CPU s / 1M",
        "server busy",
        "loadgen CPU s / 1M",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "server RSS MB",
    )

    footnotes: list[str] = []

    def traffic_table(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> None:
        out.append("| server | " + " | ".join(traffic_cols + extra) + " |")
        out.append("|---" * (1 + len(traffic_cols) + len(extra)) + "|")
        for s in rows:
            label, status = _label(s, footnotes)
            if status:
                out.append(f"| {label} | {status} |" + " |" * (len(traffic_cols) + len(extra) - 1))
                continue
            cells = [
                _spread(s, "deliveries_per_s", 0),
                _spread(s, "server_cpu_s_per_1M", 2),
                _spread(s, "hub_cpu_s_per_1M", 2),
                _f((s.get("server_cpu_util") or 0) * 100, 0) + " %",
                _spread(s, "loadgen_cpu_s_per_1M", 2),
                _spread(s, "latency_ms.p50", 2),
                _spread(s, "latency_ms.p99", 2),
                _spread(s, "latency_ms.p999", 2),
                _f(s.get("server_rss_mb"), 0),
            ]
            if "achieved send posts/s" in extra:
                cells.append(_spread(s, "achieved_send_rate", 0))
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        if any(s.get("kept_up") is False for s in rows):
            out.append("")
            out.append(
                "saturated: the server delivered less than 95 % of the offered rate, so posts "
                "queued and latency grew for the rest of the run."
            )
        out.append("")

    for w in TITLES:
        rows = by_w.get(w)
        if not rows:
            continue
        params = params_of(rows)
        out.append(f"### {title(w, params)}")
        out.append("")
        if w in ("W1", "W2"):
            traffic_table(rows)
        elif w == "W5":
            source = params.get("rate_source") or next(
                (s.get("rate_source") for s in rows if s.get("rate_source")), ""
            )
            if source:
                out.append(f"Rate: {source}.")
                out.append("")
            traffic_table(rows, ("achieved send posts/s",))
        elif w == "W3":
            cols = (
                "RSS per connection KB",
                "connect time s",
                "connects/s",
                "server CPU ms / connect",
                "idle server busy",
                "server RSS MB",
            )
            out.append("| server | " + " | ".join(cols) + " |")
            out.append("|---" * (1 + len(cols)) + "|")
            for s in rows:
                label, status = _label(s, footnotes)
                if status:
                    out.append(f"| {label} | {status} |" + " |" * (len(cols) - 1))
                    continue
                out.append(
                    f"| {label} | "
                    + " | ".join(
                        [
                            _spread(s, "rss_per_conn_kb", 1),
                            _spread(s, "connect_s", 2),
                            _spread(s, "connects_per_s", 0),
                            _spread(s, "server_cpu_ms_per_connect", 3),
                            _f((s.get("idle_server_cpu_util") or 0) * 100, 1) + " %",
                            _f(s.get("server_rss_mb"), 0),
                        ]
                    )
                    + " |"
                )
            out.append("")
        elif w == "W4":
            cols = (
                "acked posts/s",
                "server CPU s / 1M posts",
                "hub CPU s / 1M posts",
                "server busy",
                "ack p50 ms",
                "ack p99 ms",
                "ack p999 ms",
            )
            out.append("| server | " + " | ".join(cols) + " |")
            out.append("|---" * (1 + len(cols)) + "|")
            for s in rows:
                label, status = _label(s, footnotes)
                if status:
                    out.append(f"| {label} | {status} |" + " |" * (len(cols) - 1))
                    continue
                out.append(
                    f"| {label} | "
                    + " | ".join(
                        [
                            _spread(s, "acked_posts_per_s", 0),
                            _spread(s, "server_cpu_s_per_1M_posts", 1),
                            _spread(s, "hub_cpu_s_per_1M_posts", 1),
                            _f((s.get("server_cpu_util") or 0) * 100, 0) + " %",
                            _spread(s, "ack_latency_ms.p50", 2),
                            _spread(s, "ack_latency_ms.p99", 2),
                            _spread(s, "ack_latency_ms.p999", 2),
                        ]
                    )
                    + " |"
                )
            out.append("| raw, socketio | N/A: they store nothing |" + " |" * (len(cols) - 1))
            out.append("")
        for note in footnotes:
            out.append(f"- {note}")
        if footnotes:
            out.append("")
        footnotes.clear()
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.report", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("folder", type=Path, help="a results folder, bench/results/<stamp>")
    ap.add_argument("--charts", type=Path, metavar="DIR", help="default: <folder>/charts")
    args = ap.parse_args(argv)
    folder: Path = args.folder
    rows = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines() if line]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["workload"], row["server"]), []).append(row)
    summaries = [summarize(server, w, group) for (w, server), group in groups.items()]
    machine = json.loads((folder / "machine.json").read_text())
    print(markdown(summaries, machine))

    from bench import charts  # matplotlib is needed for the charts only

    for path in charts.write_charts(summaries, args.charts or folder / "charts"):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
