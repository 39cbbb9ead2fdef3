"""Member authentication: JWTs minted by the marketplace backend (PyJWT).

The algorithm is pinned by config; a token signed otherwise, or with
``alg: none``, is refused. Claims: ``sub`` (user id), ``name`` (username),
``locale`` (optional, default ``en``), ``exp`` (required); ``nbf`` and ``iat``,
when present, must not lie in the future (all within ``jwt_leeway``).

Keys rotate by ``kid``: a token whose header names a ``kid`` is verified with
that key of ``jwt_keys`` (an unknown ``kid`` is refused), a token without one
with ``jwt_secret`` / ``jwt_public_key``. During a rotation both the old and the
new key are listed, so tokens signed with either verify.

A session token from an e-mail link (``server.links``) is accepted too: it
names its member the same way and carries a ``scope``, the one room the
connection may use.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from parley.server.config import Config
from parley.server.core.clock import Clock
from parley.server.core.model import ID_RE, UserId
from parley.server.links import SESSION_KID, LinkError, LinkExpired, Links

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


class _CheckedHMAC(HMACAlgorithm):
    """HS256 whose key checks run once per configured key, not on every token.

    PyJWT prepares the key again for each token it verifies, and for HMAC that
    means trying to parse the secret as a PEM, SSH and DER public key (about
    20 µs, a fifth of a verification). The verifier only ever passes the keys of
    its configuration, so what is remembered is bounded by them.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[Any, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = super().prepare_key(key)
        return prepared


class TokenVerifier:
    __slots__ = (
        "_algorithm",
        "_audience",
        "_clock",
        "_jwt",
        "_key",
        "_keys",
        "_leeway",
        "_links",
    )

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or _WallClock()
        self._links = Links(config, self._clock)
        self._algorithm = config.jwt_algorithm
        hs256 = config.jwt_algorithm == "HS256"
        default, setting = (
            (config.jwt_secret, "jwt_secret")
            if hs256
            else (config.jwt_public_key, "jwt_public_key")
        )
        # The key for tokens without kid; None (not configured): every token must name one.
        self._key: Any = _prepare(config, default, setting) if default else None
        self._keys: dict[str, Any] = {
            kid: _prepare(config, key, "jwt_keys") for kid, key in config.jwt_keys.items()
        }
        self._leeway = config.jwt_leeway
        self._audience = config.jwt_audience or None
        self._jwt = jwt.PyJWT()
        # This instance's own table of algorithms: the module's stays as it is.
        # (An older PyJWT without one verifies as it always did: the key checked per token.)
        jws = getattr(self._jwt, "_jws", None)
        if hs256 and isinstance(jws, jwt.PyJWS):
            jws.unregister_algorithm("HS256")
            jws.register_algorithm("HS256", _CheckedHMAC())

    def verify(self, token: str) -> Principal:
        try:
            kid = _unverified_kid(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        if kid == SESSION_KID:
            return self._verify_session(token)
        if kid is None:
            key = self._key
            if key is None:
                raise AuthError("invalid token: no kid, and no key without kid is configured")
        else:
            # Never echoed back: the header is the sender's, and unverified.
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise AuthError("invalid token: unknown key id (kid)")
        try:
            claims = self._jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                # exp, nbf and iat are checked below, on the hub's clock.
                options={
                    "require": ["sub", "exp", "name"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
                audience=self._audience,
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        _check_times(claims, self._clock.now(), self._leeway)
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


def _unverified_kid(token: str) -> Any:
    """The ``kid`` of a token's header, to pick its key; nothing else is trusted yet.

    Read from the first segment alone: ``jwt.get_unverified_header`` decodes
    the whole token, which ``decode`` then does again. A header that does not
    read as a JSON object goes to PyJWT, for its error.
    """
    segment = token.partition(".")[0].encode("ascii", "replace")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        header = None
    if not isinstance(header, dict):
        header = jwt.get_unverified_header(token)  # raises InvalidTokenError, with its reason
    return header.get("kid")


def _check_times(claims: dict[str, Any], now: float, leeway: float) -> None:
    """``exp``, ``nbf`` and ``iat`` as PyJWT checks them, but against the hub's
    (injected) clock rather than the wall clock, so expiry is tested without sleeping."""
    times: dict[str, float] = {}
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue  # exp is required: jwt.decode has checked it is there
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AuthError(f"invalid token: {name} must be a number")
        times[name] = value
    if times["exp"] <= now - leeway:
        raise AuthError("token expired")
    if any(times.get(name, now) > now + leeway for name in ("nbf", "iat")):
        raise AuthError("token not yet valid (nbf or iat in the future)")


def _prepare(config: Config, key: str, setting: str) -> Any:
    """A verification key: the HS256 secret as is; a public key parsed once (not per token)."""
    if config.jwt_algorithm == "HS256":
        return key
    algorithm = jwt.get_algorithm_by_name(config.jwt_algorithm)
    return algorithm.prepare_key(config.public_key_pem(key, setting))


class _WallClock:
    def now(self) -> float:
        return time.time()


def mint_token(
    config: Config,
    user_id: str,
    name: str,
    *,
    locale: str = "en",
    ttl: float = 3600.0,
    now: float | None = None,
) -> str:
    """A token for development and tests (HS256 with the configured secret only);
    ``now``: the time it expires ``ttl`` after (a hub's clock; the wall clock by default)."""
    if config.jwt_algorithm != "HS256" or not config.jwt_secret:
        raise AuthError("minting needs jwt_algorithm HS256 and jwt_secret (a key without kid)")
    issued = time.time() if now is None else now
    claims = {"sub": user_id, "name": name, "locale": locale, "exp": int(issued + ttl)}
    return jwt.encode(claims, config.jwt_secret, algorithm="HS256")
