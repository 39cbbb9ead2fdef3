"""Hub processes for tests: ``parley serve`` in a subprocess, on ports it picks.

The hub binds port 0 and reports the ports it got on its ready line
(``parley ready ws_port=... api_port=...``); a restart binds those again, so
its members' clients find it where they left it.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SECRET = "test-secret-that-is-at-least-32-bytes-long"
API_KEY = "test-api-key"
READY_RE = re.compile(rb"^parley ready ws_port=(\d+) api_port=(\d+)$")
_numbers = itertools.count(1)


def test_settings(store: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "ws_host": "127.0.0.1",
        "ws_port": 0,
        "api_host": "127.0.0.1",
        "api_port": 0,
        "api_key": API_KEY,
        "jwt_secret": SECRET,
        "store": store,
        "log_level": "WARNING",
        "drain_window": 0.0,  # SIGTERM closes at once; tests of the drain set their own
    }
    settings.update(overrides)
    return settings


class HubProcess:
    """``parley serve`` as a real process, so tests can SIGTERM and SIGKILL it."""

    def __init__(
        self, directory: Path, store: str, command: list[str] | None = None, **overrides: Any
    ) -> None:
        # The command before ``serve``: the checkout's hub unless a test names another.
        self.command = command or [sys.executable, "-m", "parley.server.cli"]
        self.settings = test_settings(store, **overrides)  # ws_port and api_port 0
        name = f"hub-{os.getpid()}-{next(_numbers)}"
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(self.settings))
        self.log_path = directory / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def configure(self, **overrides: Any) -> None:
        """Change settings for the next ``start``."""
        self.settings.update(overrides)
        self.config_path.write_text(yaml.safe_dump(self.settings))

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings['ws_port']}/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings['api_port']}"

    def start(self, timeout: float = 15.0, *, stop_at: str | None = None) -> None:
        """Start and wait until ready; with ``stop_at``, the hub freezes when it
        reaches that stop point (``server.stoppoints``), for ``wait_stopped``."""
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PARLEY_STOP_AT", None)
        if stop_at is not None:
            env["PARLEY_STOP_AT"] = stop_at
        self.proc = subprocess.Popen(
            [*self.command, "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        try:
            self._until_ready(self.proc, timeout)
        except BaseException:
            self.stop()  # a hub that failed to start is not left running
            raise

    def _until_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        waiting = self.settings.get("workers", 1)  # each worker says it is ready
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            ready = READY_RE.match(line.strip())
            if ready:
                self._bound(int(ready[1]), int(ready[2]))
                waiting -= 1
                if waiting == 0:
                    return
            if not line and proc.poll() is not None:
                break
        raise RuntimeError(f"hub did not start; log:\n{self.log_path.read_text()}")

    def _bound(self, ws_port: int, api_port: int) -> None:
        """The ports the hub got (every worker the same): kept, so that a restart
        binds them again."""
        first = self.settings["ws_port"] == 0
        assert first or (self.settings["ws_port"], self.settings["api_port"]) == (
            ws_port,
            api_port,
        ), "every worker, and a restarted hub, must be on the ports reported first"
        self.settings.update(ws_port=ws_port, api_port=api_port)
        self.config_path.write_text(yaml.safe_dump(self.settings))

    def wait_stopped(self, timeout: float = 15.0) -> None:
        """Wait until the hub froze at its stop point (state ``T`` in /proc)."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stat.read_text().rpartition(")")[2].split()[0] == "T":
                return
            time.sleep(0.01)
        log = self.log_path.read_text()
        raise AssertionError(f"the hub never reached its stop point; log:\n{log}")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
