"""The internal API's log never holds the API key, even for a request aiohttp refuses."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.server.conftest import RunningHub
from tests.support.hubproc import API_KEY


@pytest.mark.parametrize("bad", [b"\x00", b"\x01", b"\x7f"])
async def test_a_bad_header_is_logged_without_its_value(
    hub: RunningHub, caplog: pytest.LogCaptureFixture, bad: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.app.api_port)
    writer.write(
        b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + API_KEY.encode()
        + bad
        + b"\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    logged = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])
    assert "Error handling request" in logged  # logged, for the operator...
    assert API_KEY not in logged  # ...without the key
    assert "Invalid header value char" in logged or "400" in logged
