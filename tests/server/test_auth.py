"""Token verification: the pinned algorithm, each refusal named, keys parsed once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from parley.client import ParleyClient
from parley.protocol.codec import JSON_SUBPROTOCOL
from parley.protocol.errors import CloseCode
from parley.server.auth import AuthError, TokenVerifier
from parley.server.config import RESERVED_KIDS, Config, ConfigError, load_config
from parley.server.links import SESSION_KID
from tests.server.conftest import start_hub, stop_hub
from tests.support.hubproc import API_KEY, SECRET


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u7", "name": "marie", "exp": int(time.time()) + 600, **extra}


def hs256() -> Config:
    return load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET)


def test_a_valid_token_gives_the_member() -> None:
    principal = TokenVerifier(hs256()).verify(jwt.encode(claims(locale="fr-CA"), SECRET))
    assert (principal.user_id, principal.name, principal.locale) == ("u7", "marie", "fr-CA")


# Minted when each test runs (``claims`` reads the time then), not at collection.
@pytest.mark.parametrize(
    ("mint", "reason"),
    [
        (lambda: jwt.encode(claims(exp=int(time.time()) - 3600), SECRET), "token expired"),
        (
            lambda: jwt.encode(claims(), "another secret of at least 32 bytes!!"),
            "Signature verification failed",
        ),
        (lambda: jwt.encode(claims(), None, algorithm="none"), "alg value is not allowed"),
        (
            lambda: jwt.encode({"sub": "u7", "exp": int(time.time()) + 60}, SECRET),
            'missing the "name" claim',
        ),
        (lambda: jwt.encode(claims(sub="u 7"), SECRET), "sub must be an id"),
        (lambda: jwt.encode(claims(name=""), SECRET), "name must be a string"),
        (lambda: "not.a.token", "invalid token"),
    ],
    ids=["expired", "forged", "alg none", "no name", "bad sub", "empty name", "garbage"],
)
def test_refused_tokens_say_why(mint: Callable[[], str], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        TokenVerifier(hs256()).verify(mint())


def pem(public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_asymmetric_tokens_verify_with_the_public_key_parsed_once(algorithm: str) -> None:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    config = load_config(
        None, {}, api_key=API_KEY, jwt_algorithm=algorithm, jwt_public_key=pem(private.public_key())
    )
    verifier = TokenVerifier(config)
    for _ in range(2):
        assert verifier.verify(jwt.encode(claims(), private, algorithm=algorithm)).name == "marie"
    # The pinned algorithm: an HS256 token signed with the public key text is refused.
    forged = jwt.encode(claims(), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="invalid token"):
        verifier.verify(forged)


# Not before, issued at, expiry: each within jwt_leeway (30 s by default).


@pytest.mark.parametrize(
    ("claim", "offset", "accepted"),
    [
        ("nbf", -60, True),
        ("nbf", +10, True),  # within the leeway: clock skew
        ("nbf", +600, False),
        ("iat", +10, True),
        ("iat", +600, False),
        ("exp", -10, True),  # just expired: within the leeway
        ("exp", -600, False),
    ],
)
def test_nbf_iat_and_exp_are_enforced_within_the_leeway(
    claim: str, offset: int, accepted: bool
) -> None:
    token = jwt.encode(claims(**{claim: int(time.time()) + offset}), SECRET)
    if accepted:
        assert TokenVerifier(hs256()).verify(token).user_id == "u7"
    else:
        with pytest.raises(AuthError, match=r"not yet valid|expired"):
            TokenVerifier(hs256()).verify(token)


def test_the_leeway_is_the_configured_one() -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 10), SECRET)
    strict = load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET, jwt_leeway=0)
    with pytest.raises(AuthError, match="not yet valid"):
        TokenVerifier(strict).verify(token)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", "9999999999"), ("exp", True), ("exp", None), ("nbf", "0"), ("iat", [1])],
)
def test_exp_nbf_and_iat_must_be_numbers(claim: str, value: object) -> None:
    token = jwt.encode(claims(**{claim: value}), SECRET)
    with pytest.raises(AuthError, match=claim):
        TokenVerifier(hs256()).verify(token)


def test_a_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "u7", "name": "marie"}, SECRET)
    with pytest.raises(AuthError, match="exp"):
        TokenVerifier(hs256()).verify(token)


# Key rotation by kid.

OLD = "old-secret-of-the-backend-at-least-32-bytes"
NEW = "new-secret-of-the-backend-at-least-32-bytes"


def rotating(**settings: Any) -> Config:
    settings.setdefault("jwt_secret", SECRET)
    return load_config(
        None, {}, api_key=API_KEY, jwt_keys={"2025-01": OLD, "2025-07": NEW}, **settings
    )


def with_header(header: dict[str, Any], secret: str) -> str:
    """An HS256 token with a header PyJWT itself would refuse to write."""
    signing_input = b".".join(
        base64.urlsafe_b64encode(orjson.dumps(part)).rstrip(b"=") for part in (header, claims())
    )
    mac = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def signed(key: Any, kid: str | None = None, algorithm: str = "HS256") -> str:
    headers = None if kid is None else {"kid": kid}
    return jwt.encode(claims(), key, algorithm=algorithm, headers=headers)


def test_during_a_rotation_the_old_and_the_new_key_both_verify() -> None:
    verifier = TokenVerifier(rotating())
    assert verifier.verify(signed(OLD, "2025-01")).user_id == "u7"
    assert verifier.verify(signed(NEW, "2025-07")).user_id == "u7"
    # A token without kid is verified with jwt_secret, as before jwt_keys.
    assert verifier.verify(signed(SECRET)).user_id == "u7"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (signed(OLD, "2024-01"), "unknown key id"),  # a kid the hub does not know
        (signed(SECRET, "2024-01"), "unknown key id"),  # even signed with jwt_secret
        (signed(OLD, "2025-07"), "invalid token"),  # a known kid, another key
        (signed(NEW), "invalid token"),  # no kid: jwt_secret, not a rotated key
        (with_header({"alg": "HS256", "kid": 7}, OLD), "invalid token"),  # kid not a string
        (jwt.encode(claims(), None, algorithm="none", headers={"kid": "2025-01"}), "invalid"),
    ],
)
def test_a_kid_names_exactly_one_key(token: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        TokenVerifier(rotating()).verify(token)


def test_with_jwt_keys_only_every_token_must_name_its_kid() -> None:
    verifier = TokenVerifier(rotating(jwt_secret=""))
    assert verifier.verify(signed(NEW, "2025-07")).name == "marie"
    with pytest.raises(AuthError, match="no kid"):
        verifier.verify(signed(SECRET))


def test_rotated_public_keys_verify_with_the_algorithm_pinned(tmp_path: Path) -> None:
    old, new = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    path = tmp_path / "new.pem"
    path.write_text(pem(new.public_key()))
    config = load_config(
        None,
        {},
        api_key=API_KEY,
        jwt_algorithm="RS256",
        jwt_keys={"a": pem(old.public_key()), "b": str(path)},  # PEM text, or a path to one
    )
    verifier = TokenVerifier(config)
    assert verifier.verify(signed(old, "a", "RS256")).name == "marie"
    assert verifier.verify(signed(new, "b", "RS256")).name == "marie"
    with pytest.raises(AuthError, match="invalid token"):
        verifier.verify(signed(old, "b", "RS256"))
    # Pinned: HS256 with the public key's text as the secret is refused.
    forged = with_header({"alg": "HS256", "kid": "a"}, pem(old.public_key()))
    with pytest.raises(AuthError, match="invalid token"):
        verifier.verify(forged)
    with pytest.raises(AuthError, match="no kid"):
        verifier.verify(signed(new, None, "RS256"))


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"k": "short"}, "the secret of kid 'k' needs at least 32 bytes"),
        ({"": OLD}, "a kid is 1..64"),
        ({"k" * 65: OLD}, "a kid is 1..64"),
        ({SESSION_KID: OLD}, "a kid is 1..64"),  # the e-mail link's sessions own that kid
    ],
)
def test_bad_jwt_keys_name_the_setting(keys: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=f"jwt_keys: {reason}"):
        load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET, jwt_keys=keys)


def test_the_reserved_kid_is_the_session_tokens() -> None:
    assert SESSION_KID in RESERVED_KIDS


def test_jwt_keys_from_the_environment_are_a_json_object() -> None:
    env = {"PARLEY_JWT_KEYS": '{"2025-07": "' + NEW + '"}'}
    config = load_config(None, env, api_key=API_KEY, jwt_secret=SECRET)
    assert config.jwt_keys == {"2025-07": NEW}
    with pytest.raises(ConfigError, match="jwt_keys") as refused:
        load_config(None, {"PARLEY_JWT_KEYS": "2025-07=" + NEW}, api_key=API_KEY)
    assert NEW not in str(refused.value)  # a secret is never echoed


# On a live hub: the refusal is `unauthorized`, then close 4001.


async def test_a_rotated_key_connects_and_an_unknown_kid_is_closed_with_4001(
    sqlite_url: str,
) -> None:
    hub = await start_hub(sqlite_url, jwt_keys={"2025-07": NEW})
    try:
        client = await ParleyClient.connect(hub.ws_url, signed(NEW, "2025-07"), reconnect=False)
        hub.clients.append(client)
        assert client.user["id"] == "u7"
        for token in (
            signed(NEW, "2024-01"),
            jwt.encode(claims(nbf=int(time.time()) + 600), SECRET),
        ):
            async with ws_connect(hub.ws_url, subprotocols=[JSON_SUBPROTOCOL]) as ws:  # type: ignore[list-item]
                await ws.send(orjson.dumps({"id": 1, "op": "connect", "token": token}).decode())
                reply = orjson.loads(await ws.recv())
                assert reply["error"]["code"] == "unauthorized"
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            assert ws.close_code == CloseCode.auth_failed  # 4001
    finally:
        await stop_hub(hub)
