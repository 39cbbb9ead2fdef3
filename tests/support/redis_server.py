"""A real ``redis-server`` the tests own: free port, own directory, AOF on.

The tests start it, stop it, kill it and bring it back on the same port, so
they can check what hubs do when Redis goes away and comes back, with or
without its data. It listens on loopback only and never on the system
Redis's port 6379.

AOF uses ``appendfsync always``: an append is acknowledged only once it is on
disk, so a test may ``kill()`` (SIGKILL) the server and still expect every
acknowledged entry after ``restart()``. ``everysec`` would lose up to a second
of acknowledged writes on a crash, which is the setting's documented trade-off
and not what a test should have to allow for. RDB snapshots are off
(``--save ""``) so that restarting with the data kept only replays the AOF.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

SYSTEM_REDIS_PORT = 6379
START_TIMEOUT = 10.0  # seconds for the server to answer PING
STOP_TIMEOUT = 10.0  # seconds for a graceful shutdown before SIGKILL
PORT_TRIES = 10  # ports tried before a first start gives up
PROBE_TIMEOUT = 1.0  # seconds one readiness look may take


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not on PATH; the tests start their own. "
            "Install it with scripts/ensure-redis"
        )
    return path


class PortTaken(RuntimeError):
    """The port was free when picked, and somebody else's by the time Redis bound it."""


def free_port() -> int:
    """A loopback TCP port nobody listens on now (never the system Redis's).

    Only a candidate: ``redis-server`` cannot bind port 0 and tell which port it
    got (``--port 0`` turns TCP off), so ``RedisServer.start`` checks that the
    server answering there is its own, and moves to another port if not.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != SYSTEM_REDIS_PORT:
            return port


class RedisServer:
    """One ``redis-server`` subprocess; ``restart`` keeps its port."""

    def __init__(self, data_dir: Path | None = None, *, port: int | None = None) -> None:
        self._binary = find_redis_server()
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="parley-redis-")) if data_dir is None else data_dir
        )
        self.port = free_port() if port is None else port
        if self.port == SYSTEM_REDIS_PORT:
            raise ValueError("the tests never use the system Redis's port 6379")
        # A port picked here may move while the server never ran; then it is kept.
        self._may_move = port is None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def server_args(self) -> list[str]:
        """The ``redis-server`` command line: durable (AOF, fsync always), loopback."""
        return [
            self._binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--loglevel", "notice",
        ]  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it answers; a no-op if it runs.

        Before its first start, a server whose port was taken meanwhile moves
        to another; afterwards it keeps its port (clients know it).
        """
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(PORT_TRIES):
            self._process = subprocess.Popen(
                self.server_args(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                self._wait_ready()
            except PortTaken:
                if not self._may_move:
                    raise
                self._move()
                continue
            self._may_move = False
            return
        raise PortTaken(f"no free port found in {PORT_TRIES} tries")

    def _move(self) -> None:
        """Another port, for a server that never ran."""
        self.port = free_port()

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM: Redis fsyncs the AOF and exits)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush anything."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._reap()

    def restart(self, keep_data: bool = True) -> None:
        """Stop (if running) and start again on the same port.

        ``keep_data=False`` empties the data directory first: Redis comes back
        without its data, as after a restart with no persistence.
        """
        self.stop()
        if not keep_data:
            for child in self.data_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.start()

    def close(self) -> None:
        """Stop and remove the data directory if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        """A synchronous client for test set-up (``CLIENT KILL``, inspection)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    async def flushall(self) -> None:
        async with redis.asyncio.Redis(host="127.0.0.1", port=self.port) as client:
            await client.flushall()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.stderr is not None:
            process.stderr.close()

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        # No retries, short timeouts: a port taken by something that is no Redis
        # must not hold each look for seconds.
        probe = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=PROBE_TIMEOUT,
            socket_connect_timeout=PROBE_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        with probe as client:
            while True:
                if self._process.poll() is not None:
                    failure = self._failure()
                    self._reap()
                    if "Address already in use" in failure:
                        raise PortTaken(failure)
                    raise RuntimeError(f"redis-server exited at start: {failure}")
                # BusyLoadingError (still replaying the AOF) is a ConnectionError; a
                # timeout: something that is no Redis took the port meanwhile.
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        # Somebody else's server on a port taken meanwhile answers too.
                        if client.info("server")["process_id"] != self._process.pid:
                            self.kill()
                            raise PortTaken(f"another Redis answers on port {self.port}")
                        return
                if time.monotonic() > deadline and self._process.poll() is None:
                    self.kill()
                    raise RuntimeError(f"redis-server did not answer in time: {self._failure()}")
                time.sleep(0.02)

    def _failure(self) -> str:
        stderr = b""
        if self._process is not None and self._process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                os.set_blocking(self._process.stderr.fileno(), False)
                stderr = self._process.stderr.read() or b""
        log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        return (stderr.decode(errors="replace") + log).strip() or "no output"
