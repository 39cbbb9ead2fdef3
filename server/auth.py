"""Member authentication: JWTs minted by the marketplace backend (PyJWT).

The algorithm is pinned by config; a token signed otherwise, or with
``alg: none``, is refused. Claims: ``sub`` (user id), ``name`` (username),
``locale`` (optional, default ``en``), ``exp`` (required).

A session token from an e-mail link (``server.links``) is accepted too: it
names its member the same way and carries a ``scope``, the one room the
connection may use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from server.config import Config
from server.core.clock import Clock
from server.core.model import ID_RE, UserId
from server.links import LinkError, LinkExpired, Links, is_session_token

MAX_NAME = 64
MAX_LOCALE = 16


class AuthError(Exception):
    """The token is missing, malformed, expired, forged or of another algorithm."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UserId
    name: str
    locale: str
    scope: str | None = None  # a session from an e-mail link: the one room it may use


class TokenVerifier:
    __slots__ = ("_algorithm", "_audience", "_key", "_leeway", "_links")

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self._links = Links(config, clock or _WallClock())
        self._algorithm = config.jwt_algorithm
        self._key: Any = config.jwt_secret
        if config.jwt_algorithm != "HS256":
            # Parsed once: a PEM string would be parsed again for every token.
            algorithm = jwt.get_algorithm_by_name(config.jwt_algorithm)
            self._key = algorithm.prepare_key(config.public_key_pem())
        self._leeway = config.jwt_leeway
        self._audience = config.jwt_audience or None

    def verify(self, token: str) -> Principal:
        if is_session_token(token):
            return self._verify_session(token)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={"require": ["sub", "exp", "name"]},
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        sub, name, locale = claims["sub"], claims["name"], claims.get("locale", "en")
        if not isinstance(sub, str) or ID_RE.fullmatch(sub) is None:
            raise AuthError("invalid token: sub must be an id of [A-Za-z0-9_.-]{1,64}")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise AuthError(f"invalid token: name must be a string of 1..{MAX_NAME} characters")
        if not isinstance(locale, str) or not 0 < len(locale) <= MAX_LOCALE:
            raise AuthError("invalid token: locale must be a short string such as fr-CA")
        return Principal(UserId(sub), name, locale)

    def _verify_session(self, token: str) -> Principal:
        try:
            session = self._links.verify_session(token)
        except LinkExpired:
            raise AuthError("session expired; open the conversation again") from None
        except LinkError as exc:
            raise AuthError(f"invalid session token: {exc}") from None
        return Principal(session.user_id, session.name, session.locale, session.scope)


class _WallClock:
    def now(self) -> float:
        return time.time()


def mint_token(
    config: Config, user_id: str, name: str, *, locale: str = "en", ttl: float = 3600.0
) -> str:
    """A token for development and tests (HS256 with the configured secret only)."""
    if config.jwt_algorithm != "HS256":
        raise AuthError("minting needs jwt_algorithm HS256; the backend mints RS256/EdDSA tokens")
    claims = {"sub": user_id, "name": name, "locale": locale, "exp": int(time.time() + ttl)}
    return jwt.encode(claims, config.jwt_secret, algorithm="HS256")
