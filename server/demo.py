"""``parley demo``: a small marketplace seeded into a running hub, and one login link per member.

The members, listings, likes, comments and the order come from
``server/web_static/demo/catalog.json``, the same file the demo page (``/demo``)
shows its catalogue from. They are seeded the way a marketplace backend does it:
through the hub's internal HTTP API (members, listings with their photos and
offers switched on, likes, the order and its shipping status), and, for the
members' own words (comments, order messages), over the WebSocket with tokens
minted like ``parley token`` does. Not into the store directly, because:

- the API is the backend's contract, so the demo runs what a real report runs:
  the order room opens with its system message, both parties are notified, the
  confirmation e-mails are queued, open offers close when the item sells;
- the running hub owns its store and its fan-out: rows written behind its back
  would reach no open widget, and the same code seeds SQLite and Redis hubs.

Every step is idempotent (``PUT``, ``event_id``, ``client_msg_id``): running the
demo again re-seeds nothing twice and prints fresh links.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from parley.client import ParleyClient
from parley.server.auth import mint_token
from parley.server.config import Config

CATALOG: Final = importlib.resources.files("parley.server") / "web_static" / "demo" / "catalog.json"
READY_POLL: Final = 0.25  # seconds between looks at /healthz while the hub starts
LINK_TTL: Final = 7 * 86400.0  # seconds a printed login link stays valid


class DemoError(Exception):
    """The hub could not be reached, or refused a report."""


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    name: str
    locale: str
    url: str
    role: str  # what the member does in the demo, for the printed list


def load_catalog() -> dict[str, Any]:
    catalog: dict[str, Any] = json.loads(CATALOG.read_text(encoding="utf-8"))
    return catalog


def local_ws_url(config: Config) -> str:
    """The hub's WebSocket as this machine reaches it (``0.0.0.0`` is not an address to dial)."""
    host = "127.0.0.1" if config.ws_host in ("0.0.0.0", "", "::") else config.ws_host
    return f"ws://{host}:{config.ws_port}/"


def local_api_url(config: Config) -> str:
    host = "127.0.0.1" if config.api_host in ("0.0.0.0", "", "::") else config.api_host
    return f"http://{host}:{config.api_port}"


class _Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base.rstrip("/")

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with self.http.request(method, self.base + path, json=body) as response:
                data = await response.json(content_type=None)
                if response.status >= 300:
                    raise DemoError(f"{method} {path}: {response.status} {data}")
                return data
        except aiohttp.ClientError as exc:
            raise DemoError(f"{method} {path}: {exc}") from None

    async def wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                async with self.http.get(self.base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() >= deadline:
                raise DemoError(f"no hub answers at {self.base} (start it with `make run`)")
            await asyncio.sleep(READY_POLL)


async def seed(
    config: Config,
    *,
    api_url: str,
    ws_url: str,
    public_url: str,
    wait: float = 0.0,
    catalog: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Seed the catalogue into the hub behind ``api_url`` / ``ws_url``; return the catalogue."""
    catalog = catalog or load_catalog()
    users = {u["id"]: u for u in catalog["users"]}
    photos = f"{public_url.rstrip('/')}/demo/photos/"
    headers = {"Authorization": f"Bearer {config.api_key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        api = _Api(http, api_url)
        if wait:
            await api.wait_ready(wait)
        for user in catalog["users"]:
            body = {k: user[k] for k in ("name", "locale", "email") if k in user}
            await api.call("PUT", f"/v1/users/{user['id']}", body)
        for listing in catalog["listings"]:
            body = {
                "seller_id": listing["seller_id"],
                "title": listing["title"],
                "price": listing["price"],
                "photo_url": photos + listing["photo"],
                "offers_enabled": listing.get("offers_enabled", False),
                "status": listing.get("status", "active"),
            }
            await api.call("PUT", f"/v1/listings/{listing['id']}", body)
        for like in catalog["likes"]:
            await api.call("PUT", f"/v1/listings/{like['listing_id']}/likers/{like['user_id']}")
        clients: dict[str, ParleyClient] = {}

        async def member(user_id: str) -> ParleyClient:
            if user_id not in clients:
                user = users[user_id]
                token = mint_token(config, user_id, user["name"], locale=user["locale"], ttl=600)
                clients[user_id] = await ParleyClient.connect(ws_url, token, reconnect=False)
            return clients[user_id]

        try:
            for comment in catalog["comments"]:
                poster = await member(comment["author"])
                await poster.post(
                    f"listing:{comment['listing_id']}", comment["text"], comment["client_msg_id"]
                )
            for order in catalog["orders"]:
                body = {k: order[k] for k in ("listing_id", "buyer_id", "seller_id")}
                await api.call("PUT", f"/v1/orders/{order['id']}", body)
                for message in order.get("messages", ()):
                    poster = await member(message["author"])
                    room = f"order:{order['id']}"
                    await poster.post(room, message["text"], message["client_msg_id"])
                if "status" in order:
                    await api.call("POST", f"/v1/orders/{order['id']}/status", order["status"])
        except OSError as exc:
            raise DemoError(f"cannot reach the hub's WebSocket at {ws_url}: {exc}") from None
        finally:
            for client in clients.values():
                await client.close()
    return catalog


def login_links(
    config: Config, public_url: str, catalog: dict[str, Any], ttl: float = LINK_TTL
) -> list[Login]:
    """One ``{public_url}/demo#token=...`` per member: the token stays out of server logs."""
    base = public_url.rstrip("/")
    logins = []
    for user in catalog["users"]:
        token = mint_token(config, user["id"], user["name"], locale=user["locale"], ttl=ttl)
        selling = [x["id"] for x in catalog["listings"] if x["seller_id"] == user["id"]]
        bought = [o["id"] for o in catalog["orders"] if o["buyer_id"] == user["id"]]
        roles = ([f"sells {' '.join(selling)}"] if selling else []) + (
            [f"bought in order {' '.join(bought)}"] if bought else []
        )
        url = f"{base}/demo#token={token}"
        logins.append(
            Login(user["id"], user["name"], user["locale"], url, ", ".join(roles) or "a buyer")
        )
    return logins


async def run_demo(
    config: Config,
    *,
    api_url: str | None = None,
    ws_url: str | None = None,
    public_url: str | None = None,
    wait: float = 30.0,
    ttl: float = LINK_TTL,
) -> list[Login]:
    public = public_url or config.public_url
    api = api_url or local_api_url(config)
    catalog = await seed(
        config, api_url=api, ws_url=ws_url or local_ws_url(config), public_url=public, wait=wait
    )
    return login_links(config, public, catalog, ttl)


def describe(logins: list[Login], config: Config, public_url: str) -> str:
    """What ``parley demo`` prints."""
    host = urlsplit(public_url).netloc
    lines = [
        f"Parley demo seeded on {host}. Open each link in its own browser window",
        "(a private window for the second member), then follow the story in docs/widget.md:",
        "",
    ]
    for login in logins:
        lines.append(f"  @{login.name} ({login.locale}; {login.role})")
        lines.append(f"    {login.url}")
    if config.mail_backend == "files":
        lines += [
            "",
            f"Order confirmation e-mails (with their conversation link): {config.mail_dir}/*.eml",
        ]
    return "\n".join(lines)
