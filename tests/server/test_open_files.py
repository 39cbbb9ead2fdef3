"""A hub started with a low soft limit on open files holds more members than it.

Many service managers start a process with a soft limit of 1,024 open files
and a far higher hard limit; each connection is a file descriptor. The hub
raises its soft limit to the hard one at start, as an operator would expect.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from parley.client import ParleyClient
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.support.hubproc import HubProcess

SOFT, HARD = 64, 4096
MEMBERS = 150  # over twice the soft limit the hub was started with

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")


async def test_a_hub_started_with_a_low_soft_limit_holds_more_members_than_it(
    tmp_path: Path,
) -> None:
    command = ["prlimit", f"--nofile={SOFT}:{HARD}", sys.executable, "-m", "parley.server.cli"]
    hub = HubProcess(tmp_path, f"sqlite:///{tmp_path / 'parley.sqlite3'}", command=command)
    config = load_config(None, {}, **hub.settings)
    clients: list[ParleyClient] = []
    try:
        hub.start()
        assert hub.proc is not None
        limits = Path(f"/proc/{hub.proc.pid}/limits").read_text()
        line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
        assert line.split()[3:5] == [str(HARD), str(HARD)]
        for i in range(MEMBERS):
            token = mint_token(config, f"u{i}", f"member{i}")
            clients.append(await ParleyClient.connect(hub.ws_url, token, reconnect=False))
        pings = await asyncio.gather(*(c.request("ping") for c in clients))
        assert len(pings) == MEMBERS
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        hub.stop()
