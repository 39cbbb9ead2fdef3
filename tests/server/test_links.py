"""The e-mail's links and the sessions they open (R11): signed, scoped, expiring on the clock."""

from __future__ import annotations

import time

import jwt
import pytest

from parley.server.auth import AuthError, TokenVerifier, mint_token
from parley.server.config import Config, load_config
from parley.server.core.clock import FakeClock
from parley.server.core.model import User, UserId
from parley.server.links import SESSION_TTL_S, LinkError, LinkExpired, Links, is_session_token
from tests.support.hubproc import API_KEY, SECRET


def config(**overrides: object) -> Config:
    return load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET, **overrides)


MARIE = User(UserId("u7"), "marie", "fr-CA", "marie@example.com")


def test_r11_a_link_opens_its_order_for_its_member() -> None:
    links = Links(config(), FakeClock())
    claims = links.open(links.link_token("o1", "u7"))
    assert (claims.user_id, claims.order_id, claims.room) == ("u7", "o1", "order:o1")


def test_r11_the_url_is_on_the_public_url() -> None:
    links = Links(config(public_url="https://chat.example/"), FakeClock())
    url = links.url("o1", "u7")
    assert url.startswith("https://chat.example/open?t=")
    assert links.open(url.partition("t=")[2]).order_id == "o1"


def test_r11_a_link_expires_on_the_injected_clock() -> None:
    clock = FakeClock()
    links = Links(config(link_ttl_hours=2.0), clock)
    token = links.link_token("o1", "u7")
    clock.advance(2 * 3600 - 1)
    assert links.open(token).user_id == "u7"
    clock.advance(1)
    with pytest.raises(LinkExpired):
        links.open(token)


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda links: tampered(links.link_token("o1", "u7")), id="tampered"),
        pytest.param(lambda links: "not-a-token", id="garbage"),
        pytest.param(lambda links: "x" * 5000, id="too-long"),
        pytest.param(lambda links: links.session_token(MARIE, "order:o1"), id="a-session"),
        pytest.param(
            lambda links: Links(
                config(link_secret="another-link-secret-of-32-bytes-min"), FakeClock()
            ).link_token("o1", "u7"),
            id="another-key",
        ),
        pytest.param(
            lambda links: jwt.encode(
                {"sub": "u7", "room": "listing:l1", "aud": "parley-link", "exp": 2**40},
                "k" * 32,
            ),
            id="forged",
        ),
    ],
)
def test_r11_what_is_not_a_valid_link_is_refused(make: object) -> None:
    links = Links(config(), FakeClock())
    with pytest.raises(LinkError) as caught:
        links.open(make(links))  # type: ignore[operator]
    assert not isinstance(caught.value, LinkExpired)


def test_r11_the_link_key_is_derived_from_api_key_unless_link_secret_is_set() -> None:
    clock = FakeClock()
    derived = Links(config(), clock).link_token("o1", "u7")
    own = Links(config(link_secret="a-link-secret-of-at-least-32-bytes"), clock)
    with pytest.raises(LinkError):
        own.open(derived)
    # Never the member tokens' key: a link signed with jwt_secret is refused.
    forged = jwt.encode({"sub": "u7", "room": "order:o1", "aud": "parley-link", "exp": 2**40},
                        SECRET)  # fmt: skip
    with pytest.raises(LinkError):
        Links(config(), clock).open(forged)


def test_r11_a_session_token_connects_with_its_scope() -> None:
    clock = FakeClock()
    token = Links(config(), clock).session_token(MARIE, "order:o1")
    assert is_session_token(token)
    principal = TokenVerifier(config(), clock).verify(token)
    assert (principal.user_id, principal.name, principal.locale) == ("u7", "marie", "fr-CA")
    assert principal.scope == "order:o1"


def test_r11_a_member_token_has_no_scope() -> None:
    clock = FakeClock()
    token = mint_token(config(), "u7", "marie", now=clock.now())
    assert not is_session_token(token)
    assert TokenVerifier(config(), clock).verify(token).scope is None


def test_r11_a_session_token_expires_on_the_injected_clock() -> None:
    clock = FakeClock(time.time())
    token = Links(config(), clock).session_token(MARIE, "order:o1")
    clock.advance(SESSION_TTL_S)
    with pytest.raises(AuthError, match="session expired"):
        TokenVerifier(config(), clock).verify(token)


def test_r11_a_link_is_not_a_session_nor_a_member_token() -> None:
    clock = FakeClock(time.time())
    link = Links(config(), clock).link_token("o1", "u7")
    with pytest.raises(AuthError):
        TokenVerifier(config(), clock).verify(link)
    # A session header on a token signed otherwise is still checked with the session key.
    fake = jwt.encode(
        {"sub": "u7", "name": "m", "locale": "en", "scope": "order:o1", "aud": "parley-session",
         "exp": 2**40},
        SECRET, headers={"kid": "parley-session"},
    )  # fmt: skip
    with pytest.raises(AuthError, match="invalid session token"):
        TokenVerifier(config(), clock).verify(fake)
