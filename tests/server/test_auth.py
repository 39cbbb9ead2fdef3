"""Token verification: the pinned algorithm, each refusal named, keys parsed once."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from server.auth import AuthError, TokenVerifier
from server.config import Config, load_config
from tests.support.hubproc import API_KEY, SECRET


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u7", "name": "marie", "exp": int(time.time()) + 600, **extra}


def hs256() -> Config:
    return load_config(None, {}, api_key=API_KEY, jwt_secret=SECRET)


def test_a_valid_token_gives_the_member() -> None:
    principal = TokenVerifier(hs256()).verify(jwt.encode(claims(locale="fr-CA"), SECRET))
    assert (principal.user_id, principal.name, principal.locale) == ("u7", "marie", "fr-CA")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (jwt.encode(claims(exp=int(time.time()) - 3600), SECRET), "token expired"),
        (jwt.encode(claims(), "another secret of at least 32 bytes!!"), "invalid token"),
        (jwt.encode(claims(), None, algorithm="none"), "invalid token"),
        (jwt.encode({"sub": "u7", "exp": int(time.time()) + 60}, SECRET), "invalid token"),
        (jwt.encode(claims(sub="u 7"), SECRET), "sub must be an id"),
        (jwt.encode(claims(name=""), SECRET), "name must be a string"),
        ("not.a.token", "invalid token"),
    ],
)
def test_refused_tokens_say_why(token: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        TokenVerifier(hs256()).verify(token)


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
