"""The public port's Origin check (``allowed_origins``), at the WebSocket handshake.

Browsers send ``Origin`` on every WebSocket handshake; native apps usually
send none. With ``allowed_origins`` set, a browser page of another origin is
refused with 403 before any frame, and the refusal is logged; a handshake
without ``Origin`` goes on (the token in ``connect`` stays the credential).
The hub's own public origin (``public_url``'s) is always allowed: it serves
the e-mail link's landing page. Empty, the default: no check.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from parley.protocol.codec import JSON_SUBPROTOCOL
from parley.server.config import ConfigError, load_config
from parley.server.landing import REFUSALS_LOGGED
from parley.server.origins import origin_of
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.hubproc import API_KEY, SECRET

MARKETPLACE = "https://www.marketplace.example"


async def connects(hub: RunningHub, origin: str | None) -> bool:
    """Whether a handshake with ``origin`` is accepted and its ``connect`` served."""
    try:
        async with ws_connect(
            hub.ws_url,
            subprotocols=[JSON_SUBPROTOCOL],  # type: ignore[list-item]
            origin=None if origin is None else Origin(origin),
        ) as ws:
            await ws.send(
                orjson.dumps({"id": 1, "op": "connect", "token": hub.token("u1")}).decode()
            )
            reply = orjson.loads(await ws.recv())
            return bool(reply["result"]["user"]["id"] == "u1")
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (MARKETPLACE, True),
        ("https://m.marketplace.example", True),
        (None, True),  # a native app: no Origin
        ("https://evil.example", False),
        ("http://www.marketplace.example", False),  # another scheme is another origin
        ("https://www.marketplace.example:8443", False),  # and another port
        ("null", False),  # a sandboxed frame or a file:// page
    ],
)
async def test_only_allowed_origins_open_a_websocket(
    sqlite_url: str, origin: str | None, accepted: bool
) -> None:
    # Written as an operator might: browsers send the host in lower case.
    allowed = ("https://WWW.marketplace.example", "https://m.marketplace.example")
    hub = await start_hub(sqlite_url, allowed_origins=allowed)
    try:
        assert await connects(hub, origin) is accepted
    finally:
        await stop_hub(hub)


async def test_without_allowed_origins_any_origin_connects(sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url)
    try:
        assert await connects(hub, "https://evil.example")
        assert await connects(hub, None)
    finally:
        await stop_hub(hub)


@pytest.mark.parametrize(
    "origin",
    ["www.marketplace.example", "https://www.marketplace.example/", "ftp://x.example", "https://"],
)
def test_an_allowed_origin_is_a_scheme_and_a_host(origin: str) -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET, allowed_origins=[origin])


def test_allowed_origins_from_the_environment_are_comma_separated() -> None:
    env = {"PARLEY_ALLOWED_ORIGINS": f"{MARKETPLACE}, https://m.marketplace.example"}
    config = load_config(None, env, api_key=API_KEY, jwt_secret=SECRET)
    assert config.allowed_origins == (MARKETPLACE, "https://m.marketplace.example")
    env = {"PARLEY_ALLOWED_ORIGINS": f'["{MARKETPLACE}"]'}
    assert load_config(None, env, api_key=API_KEY, jwt_secret=SECRET).allowed_origins == (
        MARKETPLACE,
    )


async def test_the_hubs_own_public_origin_is_always_allowed(sqlite_url: str) -> None:
    """The landing page of the e-mail link and the demo are served from public_url."""
    hub = await start_hub(
        sqlite_url, allowed_origins=(MARKETPLACE,), public_url="https://chat.marketplace.example/"
    )
    try:
        assert await connects(hub, "https://chat.marketplace.example")
        assert await connects(hub, "https://CHAT.marketplace.example")
        assert not await connects(hub, "https://chat.marketplace.example:8443")
    finally:
        await stop_hub(hub)


async def test_a_refused_handshake_is_logged_with_its_origin_and_rate_limited(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await start_hub(sqlite_url, allowed_origins=(MARKETPLACE,))
    try:
        with caplog.at_level(logging.WARNING, logger="parley.landing"):
            for _ in range(REFUSALS_LOGGED + 5):
                assert not await connects(hub, "https://evil.example")
        lines = [r.getMessage() for r in caplog.records if "WebSocket refused" in r.getMessage()]
        assert len(lines) == REFUSALS_LOGGED  # the rest are counted, not logged
        assert all("'https://evil.example'" in line for line in lines)
        assert "allowed_origins" in lines[0]
    finally:
        await stop_hub(hub)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Chat.Example.com/", "https://chat.example.com"),
        ("https://chat.example.com:443", "https://chat.example.com"),
        ("http://127.0.0.1:8700/x", "http://127.0.0.1:8700"),
        ("http://[::1]:80/", "http://[::1]"),
    ],
)
def test_an_origin_is_written_as_browsers_send_it(url: str, origin: str) -> None:
    assert origin_of(url) == origin
