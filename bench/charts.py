"""One SVG chart per workload, drawn from the summaries of ``report.summarize``.

Left, what each server spends: server CPU per delivery (W4: per acknowledged
post; W3: memory per connection), a bar at the median of the repeats with an
error bar over [min, max]. Right, latency p50/p99/p999 on a log scale, a point
at the median with its [min, max] (W3: server CPU per connect, as a bar).
Saturated or partial results are hatched (points hollow) and their tick label
says why, as the tables do; a server with no figures gets a note in its place.
The output depends on the results only: re-running on them gives the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench import report

Summary = dict[str, Any]

# Left panel per workload: (metric, axis label), the figures the tables show.
SPEND = {
    "W1": ("server_cpu_s_per_1M", "server CPU s / 1M deliveries"),
    "W2": ("server_cpu_s_per_1M", "server CPU s / 1M deliveries"),
    "W3": ("rss_per_conn_kb", "server RSS per connection, KB"),
    "W4": ("server_cpu_s_per_1M_posts", "server CPU s / 1M acked posts"),
    "W5": ("server_cpu_s_per_1M", "server CPU s / 1M deliveries"),
}
LATENCY = {
    "W1": ("latency_ms", "latency, ms (log scale)"),
    "W2": ("latency_ms", "latency, ms (log scale)"),
    "W4": ("ack_latency_ms", "post to ack latency, ms (log scale)"),
    "W5": ("latency_ms", "latency, ms (log scale)"),
}
W3_RIGHT = ("server_cpu_ms_per_connect", "server CPU ms / connect")
PERCENTILES = (("p50", "o", "tab:green"), ("p99", "s", "tab:orange"), ("p999", "^", "tab:red"))
BAR_COLOR = "tab:blue"


def _value(s: Summary, metric: str) -> tuple[float, float, float] | None:
    """Median, min and max of a metric over the repeats; None when it has none."""
    median = report._get(s, metric)
    if median is None:
        return None
    lo, hi = s.get("spread", {}).get(metric, [median, median])
    return median, lo, hi


def _servers(ax: Axes, summaries: list[Summary]) -> None:
    """Server names on the x axis, with the tables' marks; a note where figures are missing."""
    n = len(summaries)
    pad = max(0.6, (3 - n) / 2)  # a lone server keeps a narrow bar
    ax.set_xlim(-pad, n - 1 + pad)
    labels = []
    for i, s in enumerate(summaries):
        if "basis" in s:
            labels.append("\n".join([s["server"], *report.marks(s)]))
            continue
        labels.append(s["server"])
        note = "pending" if s.get("status") == "unavailable" else s.get("status", "not run")
        where = ax.get_xaxis_transform()  # x in data, y in axes fraction
        ax.text(i, 0.5, f"no figures\n({note})", ha="center", transform=where, color="gray")
    ax.set_xticks(range(n), labels)


def _plain(value: float, _pos: int) -> str:
    return f"{value:g}"


def _two_and_five(value: float, _pos: int) -> str:
    mantissa = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if mantissa in (2, 5) else ""


def _bars(ax: Axes, summaries: list[Summary], metric: str, label: str) -> None:
    for i, s in enumerate(summaries):
        value = _value(s, metric)
        if value is None:
            continue
        median, lo, hi = value
        ax.bar(
            i,
            median,
            width=0.6,
            color=BAR_COLOR,
            edgecolor="white",
            hatch="///" if report.marks(s) else None,
        )
        if hi > lo:
            ax.errorbar(
                i,
                median,
                yerr=[[median - lo], [hi - median]],
                fmt="none",
                ecolor="black",
                capsize=4,
                linewidth=1,
            )
    ax.set_ylim(bottom=0)
    ax.set_ylabel(label)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    _servers(ax, summaries)


def _percentiles(ax: Axes, summaries: list[Summary], prefix: str, label: str) -> None:
    plotted: list[float] = []
    labelled: set[str] = set()  # one legend entry per percentile
    for j, (name, marker, color) in enumerate(PERCENTILES):
        for i, s in enumerate(summaries):
            value = _value(s, f"{prefix}.{name}")
            if value is None or value[1] <= 0:
                continue
            median, lo, hi = value
            ax.errorbar(
                i + (j - 1) * 0.2,
                median,
                yerr=[[median - lo], [hi - median]],
                fmt=marker,
                color=color,
                mfc="white" if report.marks(s) else color,
                capsize=3,
                linewidth=1,
                label=None if name in labelled else name,
            )
            plotted += [lo, hi]
            labelled.add(name)
    ax.set_yscale("log")
    if plotted:  # whole decades, so that every axis has at least two labelled ticks
        low = math.floor(math.log10(min(plotted)))
        high = math.ceil(math.log10(max(plotted) * 1.01))
        ax.set_ylim(10**low, 10**high)
        if high - low <= 2:  # few decades: label 2 and 5 of each too
            ax.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
        ax.legend(loc="best", ncols=3, fontsize=7)
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    ax.set_ylabel(label)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    _servers(ax, summaries)


def chart(workload: str, summaries: list[Summary]) -> Figure:
    """The two panels of one workload, its table heading as title."""
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    _bars(left, summaries, *SPEND[workload])
    if workload == "W3":
        _bars(right, summaries, *W3_RIGHT)
    else:
        _percentiles(right, summaries, *LATENCY[workload])
    fig.suptitle(report.title(workload, report.params_of(summaries)), fontsize=10)
    return fig


def write_charts(summaries: list[Summary], folder: Path) -> list[Path]:
    """Write ``w1.svg`` ... ``w5.svg`` (the workloads present) into folder; their paths."""
    written = []
    for workload in report.TITLES:
        rows = [s for s in summaries if s["workload"] == workload]
        if not rows:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{workload.lower()}.svg"
        # Glyphs as paths: the SVG looks the same in every browser and on GitHub,
        # with or without the font; a fixed hash salt keeps the element ids stable.
        with matplotlib.rc_context(
            {"svg.fonttype": "path", "svg.hashsalt": "parley-bench", "font.size": 8}
        ):
            chart(workload, rows).savefig(path, format="svg", metadata={"Date": None})
        written.append(path)
    return written
