"""Process plumbing for the harness: /proc readers, free ports, pinned children.

CPU time is utime + stime from ``/proc/<pid>/stat`` (all threads of the
process, in clock ticks), RSS is ``VmRSS`` from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVER_CORE = 1
LOADGEN_CORE = 0
# Where Parley's Redis nodes run: the hub's core (the default), or the load
# generator's (--store-core loadgen), so that the hub has a core of its own.
STORE_CORE = SERVER_CORE


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_busy_seconds(core: int) -> float:
    """Busy time of one core since boot (everything but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK
    return 0.0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """pid and every live process below it (a server may fork workers)."""
    out = [pid]
    i = 0
    while i < len(out):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{out[i]}/task"):
                with open(f"/proc/{out[i]}/task/{task}/children") as f:
                    out.extend(int(c) for c in f.read().split())
        i += 1
    return out


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for root in pids:
        for pid in descendants(root):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
    return total


def tree_rss_kb(pids: list[int]) -> int:
    total = 0
    for root in pids:
        for pid in descendants(root):
            with contextlib.suppress(OSError):
                total += rss_kb(pid)
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StartFailed(RuntimeError):
    """A server did not come up: its later runs are skipped."""


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log, for an error message."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"({log.name}: no log)"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"last lines of {log.name}:\n{tail}" if tail else f"({log.name} is empty)"


async def wait_for_port(
    port: int, proc: asyncio.subprocess.Process, timeout: float, log: Path | None = None
) -> None:
    """Until 127.0.0.1:port accepts, the process died, or timeout seconds passed.

    ``log``: the process's log, whose last lines a failure quotes."""
    deadline = time.monotonic() + timeout

    def tail() -> str:
        return "" if log is None else "\n" + log_tail(log)

    while True:
        if proc.returncode is not None:
            raise StartFailed(
                f"process exited with code {proc.returncode} before listening{tail()}"
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"nothing listening on {port} after {timeout:.0f}s{tail()}"
                ) from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return


def pinned(core: int, argv: list[str]) -> list[str]:
    if can_pin():
        return ["taskset", "-c", str(core), *argv]
    return argv


# Decided once at import, before the harness pins itself to the load generator's core.
_CAN_PIN = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2


def can_pin() -> bool:
    return _CAN_PIN


async def spawn(argv: list[str], log: Path, **kwargs: object) -> asyncio.subprocess.Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            **kwargs,  # type: ignore[arg-type]
        )


async def stop(proc: asyncio.subprocess.Process | None, grace: float = 5.0) -> None:
    """SIGTERM this one process, SIGKILL it after grace seconds."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def raise_fd_limit(want: int = 65536) -> int:
    """Raise RLIMIT_NOFILE for the harness and so for every child it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (max(want, soft), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return target
        except (ValueError, OSError):
            continue
    return soft
