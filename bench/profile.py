"""py-spy profiles of a Python server over a run's measured phase, and their summary.

``python -m bench.run --profile`` records one profile per run of a Python
server (raw, parley, parley-redis) with ``py-spy record --nonblocking`` on the
load generator's core, as collapsed stacks in ``logs/<server>-<workload>-<n>.txt``.
Profiled runs cost the load generator's core some CPU: use their figures for
where the time goes, not for the tables.

``python -m bench.profile FILE [--top N]`` prints the functions with the most
samples on CPU, by self time and by inclusive time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

from bench import procs


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else None


class Profiler:
    """py-spy recording one process (and its children) until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        argv = [
            exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--nonblocking",
            "--subprocesses", "--format", "raw", "--output", str(self.out),
        ]  # fmt: skip
        self.proc = await procs.spawn(
            procs.pinned(procs.LOADGEN_CORE, argv), self.out.with_suffix(".log")
        )

    async def stop(self) -> None:
        """SIGINT makes py-spy write its output; bounded like everything else."""
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await procs.stop(self.proc)


_LINE = re.compile(r" \(([^()]*?)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    """'handler (server/hub.py:120)' -> 'handler (server/hub.py)': one entry per function."""
    return _LINE.sub(lambda m: f" ({_short(m.group(1))})", raw.strip())


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarize(path: Path, top: int = 25) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        # The first frame is the process/thread label py-spy adds; skip it.
        frames = [f for f in frames[1:] if f] or frames
        total += n
        self_time[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if total == 0:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples on CPU", "", "self %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in self_time.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    ap.add_argument("file", type=Path, help="collapsed stacks written by --profile")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    print(summarize(args.file, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
