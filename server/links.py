"""Signed links of the confirmation e-mail, and the sessions they open (R11).

A link token opens one conversation (``order:<id>``) for one member until it
expires (``link_ttl_hours``): ``{public_url}/open?t=<token>``. The landing page
(``server.landing``) trades it for a short-lived session token, limited to that
room and that member, which the widget sends in ``connect`` like a member token.

Both are JWTs (HS256) signed with keys derived from ``link_secret``, or from
``api_key`` when it is empty, and never with the member tokens' key: a link is
not a session, a session is not a member token (audiences and keys differ).
Their expiry is checked against the injected clock, so tests move time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import jwt

from parley.server.config import Config
from parley.server.core.clock import Clock
from parley.server.core.model import ID_RE, OrderId, User, UserId
from parley.server.core.rooms import order_room

LINK_AUDIENCE: Final = "parley-link"
SESSION_AUDIENCE: Final = "parley-session"
SESSION_KID: Final = "parley-session"  # in the header: tells a session token from a member's
SESSION_TTL_S: Final = 3600.0  # a session token opens connections for this long
_ALGORITHM: Final = "HS256"
MAX_TOKEN: Final = 2048  # a longer ``t`` is not one of ours


class LinkError(Exception):
    """The token is malformed, forged, for another use, or expired (``LinkExpired``)."""


class LinkExpired(LinkError):
    """A genuine link whose lifetime is over; ``user_id`` is the member it was for."""

    def __init__(self, message: str, user_id: UserId) -> None:
        super().__init__(message)
        self.user_id = user_id


@dataclass(frozen=True, slots=True)
class LinkClaims:
    user_id: UserId
    order_id: OrderId

    @property
    def room(self) -> str:
        return order_room(self.order_id)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    user_id: UserId
    name: str
    locale: str
    scope: str  # the one room the session may use


def _derive(base: bytes, purpose: bytes) -> bytes:
    return hmac.new(base, b"parley/" + purpose, hashlib.sha256).digest()


class Links:
    def __init__(self, config: Config, clock: Clock) -> None:
        base = (config.link_secret or config.api_key).encode()
        self._link_key = _derive(base, b"link")
        self._session_key = _derive(base, b"session")
        self._ttl_s = config.link_ttl_hours * 3600
        self._base_url = config.public_url.rstrip("/")
        self._clock = clock

    # Links.

    def link_token(self, order_id: str, user_id: str) -> str:
        claims = {
            "sub": user_id,
            "room": order_room(order_id),
            "aud": LINK_AUDIENCE,
            "exp": int(self._clock.now() + self._ttl_s),
        }
        return jwt.encode(claims, self._link_key, algorithm=_ALGORITHM)

    def url(self, order_id: str, user_id: str) -> str:
        return f"{self._base_url}/open?t={quote(self.link_token(order_id, user_id), safe='')}"

    def open(self, token: str) -> LinkClaims:
        """The member and order a link opens; ``LinkError`` (``LinkExpired``) otherwise."""
        claims = self._decode(token, self._link_key, LINK_AUDIENCE, ("sub", "room", "exp"))
        sub, room = claims["sub"], claims["room"]
        kind, _, order_id = room.partition(":") if isinstance(room, str) else ("", "", "")
        if kind != "order" or ID_RE.fullmatch(order_id) is None:
            raise LinkError("room must be an order room")
        return LinkClaims(UserId(sub), OrderId(order_id))

    # Sessions.

    def session_token(self, user: User, room: str) -> str:
        claims = {
            "sub": user.id,
            "name": user.name,
            "locale": user.locale,
            "scope": room,
            "aud": SESSION_AUDIENCE,
            "exp": int(self._clock.now() + SESSION_TTL_S),
        }
        return jwt.encode(
            claims, self._session_key, algorithm=_ALGORITHM, headers={"kid": SESSION_KID}
        )

    def verify_session(self, token: str) -> SessionClaims:
        claims = self._decode(
            token, self._session_key, SESSION_AUDIENCE, ("sub", "name", "locale", "scope", "exp")
        )
        name, locale, scope = claims["name"], claims["locale"], claims["scope"]
        if not all(isinstance(value, str) and value for value in (name, locale, scope)):
            raise LinkError("name, locale and scope must be strings")
        if not scope.startswith("order:"):
            raise LinkError("scope must be an order room")
        return SessionClaims(UserId(claims["sub"]), name, locale, scope)

    def _decode(
        self, token: str, key: bytes, audience: str, required: tuple[str, ...]
    ) -> dict[str, Any]:
        if len(token) > MAX_TOKEN:
            raise LinkError("token too long")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                audience=audience,
                # The expiry is ours to check, on the injected clock.
                options={"require": list(required), "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise LinkError(str(exc)) from None
        exp, sub = claims["exp"], claims["sub"]
        if type(exp) is not int:
            raise LinkError("exp must be an integer")
        if not isinstance(sub, str) or ID_RE.fullmatch(sub) is None:
            raise LinkError("sub must be an id")
        if exp <= self._clock.now():
            raise LinkExpired("expired", UserId(sub))
        return claims


def is_session_token(token: str) -> bool:
    """Whether ``token`` says it is a session token (its signature is checked apart)."""
    try:
        return jwt.get_unverified_header(token).get("kid") == SESSION_KID
    except jwt.InvalidTokenError:
        return False
