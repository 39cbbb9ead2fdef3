"""``parley demo``: the demo marketplace seeded into a running hub, idempotently, and its links."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from parley.client import ParleyClient
from parley.server.cli import main
from parley.server.config import load_config
from parley.server.demo import DemoError, describe, load_catalog, run_demo
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.closed_port import closed_port
from tests.support.hubproc import API_KEY, SECRET
from tests.support.hubproc import test_settings as hub_settings


@pytest.fixture
async def sqlite_hub(sqlite_url: str, tmp_path: Path) -> AsyncIterator[RunningHub]:
    hub = await start_hub(sqlite_url, mail_dir=str(tmp_path / "mail"))
    try:
        yield hub
    finally:
        await stop_hub(hub)


async def test_the_demo_seeds_the_catalogue_once_however_often_it_runs(
    sqlite_hub: RunningHub,
) -> None:
    hub = sqlite_hub
    for _ in range(2):
        logins = await run_demo(
            hub.config,
            api_url=hub.api_url,
            ws_url=hub.ws_url,
            public_url="http://chat.example:8700",
        )
    catalog = load_catalog()
    assert [login.name for login in logins] == [u["name"] for u in catalog["users"]]
    marc = next(login for login in logins if login.name == "marc")
    url = urlsplit(marc.url)
    assert (url.scheme, url.netloc, url.path) == ("http", "chat.example:8700", "/demo")
    assert url.fragment.startswith("token=") and not url.query  # never sent to a server

    # The link's token logs the member in; what was seeded is there once.
    client = await ParleyClient.connect(hub.ws_url, url.fragment.removeprefix("token="))
    hub.clients.append(client)
    assert client.user["name"] == "marc"
    coat = await client.history("listing:demo-coat")
    assert len(coat["messages"]) == len(
        [c for c in catalog["comments"] if "coat" in c["listing_id"]]
    )
    order = await client.history("order:demo-1001")
    kinds = [(m["kind"], (m.get("data") or {}).get("type")) for m in reversed(order["messages"])]
    assert kinds == [
        ("system", "order_opened"),
        ("comment", None),
        ("comment", None),
        ("system", "order_status"),
    ]
    purchases = await client.request("conversations", role="purchases")
    (line,) = purchases["conversations"]
    assert line["listing"]["photo_url"] == "http://chat.example:8700/demo/photos/chair.svg"
    assert (await client.offers_enable("demo-boots", True))["offers_enabled"] is True

    sophie = await hub.client("u-sophie", "sophie.tremblay", locale="fr-CA")
    likers = await sophie.likers("demo-lamp")
    assert {liker["name"] for liker in likers["likers"]} == {"marc", "Amélie", "jordan_k"}

    text = describe(logins, hub.config, "http://chat.example:8700")
    assert marc.url in text and "@sophie.tremblay (fr-CA; sells demo-coat" in text


@pytest.fixture
def no_hub() -> Iterator[int]:
    """A port where no hub answers: bound by the test, never listened on."""
    with closed_port() as port:
        yield port


async def test_no_hub_is_a_clear_error(sqlite_url: str, no_hub: int) -> None:
    config = load_config(None, {}, **hub_settings(sqlite_url))
    with pytest.raises(DemoError, match="no hub answers"):
        await run_demo(
            config,
            api_url=f"http://127.0.0.1:{no_hub}",
            ws_url=f"ws://127.0.0.1:{no_hub}/",
            wait=0.3,
        )


def test_the_command_says_when_no_hub_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_hub: int
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"api_port: {no_hub}\nws_port: {no_hub}\napi_key: {API_KEY}\n"
        f"jwt_secret: {SECRET}\nstore: sqlite:///x\n"
    )
    assert main(["demo", "--config", str(config), "--wait", "0.2"]) == 1
    assert f"no hub answers at http://127.0.0.1:{no_hub}" in capsys.readouterr().err
