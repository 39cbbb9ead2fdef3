"""Settings: ``config.yaml``, overridden by ``PARLEY_<SETTING>`` environment variables.

A bad setting fails at start with a message naming it; nothing is guessed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, get_origin, get_type_hints

import yaml

from parley.server.store.redis_url import REDIS_SCHEMES, parse_cluster_url, wait_options

JWT_ALGORITHMS = ("HS256", "RS256", "EdDSA")
CONTACT_POLICIES = ("mask", "reject", "off")
# A key id the e-mail link's session tokens carry (``server.links.SESSION_KID``):
# a member key under it would be taken for a session key.
RESERVED_KIDS = ("parley-session",)
MAX_KID = 64


STORE_SCHEMES: Final = ("sqlite", *REDIS_SCHEMES)


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class Config:
    ws_host: str = "0.0.0.0"
    ws_port: int = 8700
    auth_timeout: float = 5.0
    max_frame_bytes: int = 65536
    max_text_chars: int = 4000
    send_buffer_bytes: int = 1 << 20
    max_connections_per_member: int = 20
    max_connections_per_ip: int = 200
    resume_max_missed: int = 500
    max_bad_frames: int = 10
    write_rate: float = 20.0
    write_burst: int = 100
    member_write_rate: float = 30.0
    member_write_burst: int = 200
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    jwt_algorithm: str = "HS256"
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_leeway: int = 30
    jwt_audience: str = ""
    jwt_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    allowed_origins: tuple[str, ...] = ()
    api_host: str = "127.0.0.1"
    api_port: int = 8701
    api_key: str = ""
    store: str = "sqlite:///data/parley.sqlite3"
    workers: int = 1
    log_level: str = "INFO"
    shutdown_grace: float = 10.0
    drain_window: float = 10.0
    slow_log_ms: float = 0.0
    contact_policy_listing: str = "mask"
    contact_policy_order: str = "mask"
    phone_region: str = "CA"
    mention_rate: float = 0.5
    mention_burst: int = 30
    push_when: str = "offline"
    push_visibility_timeout: float = 60.0
    push_max_items: int = 1_000_000
    app_url: str = "https://marketplace.example"
    order_room_after_end: str = "writable"
    typing_rate: float = 1.0
    typing_burst: int = 3
    public_url: str = "http://127.0.0.1:8700"
    link_secret: str = ""
    link_ttl_hours: float = 168.0
    mail_backend: str = "files"
    mail_dir: str = "data/mail"
    mail_from: str = "Marketplace <no-reply@marketplace.example>"
    mail_default_locale: str = "en"
    mail_max_attempts: int = 8
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: str = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    unread_reminder_minutes: float = 0.0
    offer_ttl_hours: float = 72.0
    offer_sweep_interval: float = 1.0
    max_blocks: int = 1000
    max_mutes: int = 1000
    report_rate: float = 0.05
    report_burst: int = 10
    report_context: int = 5
    hold_after_reports: int = 0
    completion_grace: float = 10.0
    retention_order_days: float = 0.0
    retention_listing_days: float = 0.0
    retention_interval: float = 3600.0
    retention_batch: int = 500

    def __post_init__(self) -> None:
        for name in ("ws_port", "api_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name}: must be a port number (0 picks a free one)")
        for name in (
            "max_frame_bytes",
            "max_text_chars",
            "send_buffer_bytes",
            "max_connections_per_member",
            "resume_max_missed",
            "max_bad_frames",
            "write_burst",
            "member_write_burst",
            "workers",
            "mention_burst",
            "push_max_items",
            "typing_burst",
            "mail_max_attempts",
            "max_blocks",
            "max_mutes",
            "report_burst",
            "retention_batch",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        for name in (
            "auth_timeout",
            "ping_interval",
            "ping_timeout",
            "shutdown_grace",
            "push_visibility_timeout",
            "offer_ttl_hours",
            "offer_sweep_interval",
            "link_ttl_hours",
            "retention_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be a positive number of seconds")
        # A rate limit is turned up, never off: 0 would refuse every write past the burst.
        for name in (
            "write_rate",
            "member_write_rate",
            "mention_rate",
            "typing_rate",
            "report_rate",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be a positive number per second")
        if self.hold_after_reports < 0:
            raise ConfigError("hold_after_reports: must be 0 (off) or a number of members")
        if not 0 <= self.report_context <= 20:
            raise ConfigError("report_context: must be between 0 and 20 messages")
        if self.jwt_algorithm not in JWT_ALGORITHMS:
            raise ConfigError(f"jwt_algorithm: must be one of {', '.join(JWT_ALGORITHMS)}")
        # With jwt_keys, the key without kid may be left empty: tokens must then name a kid.
        hs256_secret = self.jwt_secret or not self.jwt_keys
        if self.jwt_algorithm == "HS256" and hs256_secret and len(self.jwt_secret.encode()) < 32:
            raise ConfigError("jwt_secret: HS256 needs a secret of at least 32 bytes")
        if self.jwt_algorithm != "HS256" and not self.jwt_public_key and not self.jwt_keys:
            raise ConfigError(f"jwt_public_key: {self.jwt_algorithm} needs a public key")
        self._check_jwt_keys()
        self._check_origins()
        if not self.api_key:
            raise ConfigError("api_key: must be set")
        scheme = self.store.partition("://")[0]
        if scheme not in STORE_SCHEMES:
            raise ConfigError(
                "store: must be sqlite:///path, redis://host:port/db "
                "or redis+cluster://host:port,host:port/"
            )
        try:
            if scheme != "sqlite":
                wait_options(self.store, scheme.endswith("+cluster"))
            if scheme.endswith("+cluster"):
                parse_cluster_url(self.store)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.workers > 1 and self.store.startswith("sqlite"):
            raise ConfigError(
                "workers: several hub processes need the Redis store; "
                "the embedded SQLite store serves one process"
            )
        for name in ("contact_policy_listing", "contact_policy_order"):
            if getattr(self, name) not in CONTACT_POLICIES:
                raise ConfigError(f"{name}: must be one of {', '.join(CONTACT_POLICIES)}")
        if len(self.phone_region) != 2 or not self.phone_region.isupper():
            raise ConfigError("phone_region: must be an ISO 3166 region code such as CA")
        if self.max_connections_per_ip < 0:
            raise ConfigError("max_connections_per_ip: must be 0 (off) or a number of connections")
        if self.completion_grace < 0:
            raise ConfigError("completion_grace: must be 0 or a number of seconds")
        if self.drain_window < 0:
            raise ConfigError("drain_window: must be 0 (close all at once) or a number of seconds")
        for name in ("retention_order_days", "retention_listing_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be 0 (off) or a number of days")
        if self.slow_log_ms < 0:
            raise ConfigError("slow_log_ms: must be 0 (off) or a positive number of ms")
        if self.mail_backend not in ("files", "smtp"):
            raise ConfigError("mail_backend: must be files (an .eml per message) or smtp")
        if self.smtp_tls not in ("none", "starttls", "tls"):
            raise ConfigError("smtp_tls: must be none, starttls or tls")
        if not 0 <= self.smtp_port <= 65535:
            raise ConfigError("smtp_port: must be a port number")
        if self.link_secret and len(self.link_secret.encode()) < 32:
            raise ConfigError("link_secret: needs at least 32 bytes (empty: derived from api_key)")
        if not self.public_url.startswith(("https://", "http://")):
            raise ConfigError("public_url: must be an http(s) URL")
        if self.unread_reminder_minutes < 0:
            raise ConfigError("unread_reminder_minutes: must be 0 (off) or a number of minutes")
        if self.order_room_after_end not in ("writable", "read_only"):
            raise ConfigError("order_room_after_end: must be writable or read_only")
        if self.push_when not in ("offline", "always"):
            raise ConfigError("push_when: must be offline or always")
        if not self.app_url.startswith(("https://", "http://")):
            raise ConfigError("app_url: must be an http(s) URL")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("log_level: must be DEBUG, INFO, WARNING or ERROR")

    @property
    def offer_ttl_ms(self) -> int:
        return int(self.offer_ttl_hours * 3_600_000)

    def _check_jwt_keys(self) -> None:
        for kid, key in self.jwt_keys.items():
            if not 0 < len(kid) <= MAX_KID or kid in RESERVED_KIDS:
                raise ConfigError(f"jwt_keys: a kid is 1..{MAX_KID} characters, not {kid[:70]!r}")
            if self.jwt_algorithm == "HS256" and len(key.encode()) < 32:
                raise ConfigError(f"jwt_keys: the secret of kid {kid!r} needs at least 32 bytes")
            if not key:
                raise ConfigError(f"jwt_keys: kid {kid!r} needs a public key (PEM or path)")

    def _check_origins(self) -> None:
        for origin in self.allowed_origins:
            scheme, sep, host = origin.partition("://")
            if scheme not in ("https", "http") or not sep or not host or "/" in host:
                raise ConfigError(
                    f"allowed_origins: {origin[:100]!r} is not an origin such as "
                    "https://www.marketplace.example (scheme and host, no path)"
                )

    def public_key_pem(self, key: str | None = None, setting: str = "jwt_public_key") -> str:
        """A public key as PEM text: ``key`` (default ``jwt_public_key``) or the file it names."""
        key = self.jwt_public_key if key is None else key
        if key.lstrip().startswith("-----BEGIN"):
            return key
        try:
            return Path(key).read_text()
        except OSError as exc:
            raise ConfigError(f"{setting}: cannot read {key}: {exc.strerror}") from None

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    origin = get_origin(kind)
    if origin is tuple:
        return _coerce_strings(name, value)
    if origin is Mapping:
        return _coerce_mapping(name, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}")


def _coerce_strings(name: str, value: Any) -> tuple[str, ...]:
    """A YAML list, or in the environment a comma-separated list (or a JSON array)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            value = _json(name, value)
        else:
            value = [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{name}: expected a list of strings, got {value!r}")


def _coerce_mapping(name: str, value: Any) -> dict[str, str]:
    """A YAML mapping, or in the environment a JSON object, of strings to strings."""
    if isinstance(value, str):
        value = _json(name, value)
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    # Never echoed: the values may be secrets.
    raise ConfigError(f"{name}: expected a mapping of names to strings")


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(f"{name}: not valid JSON") from None


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Read ``path`` (if given), then ``PARLEY_*`` from ``env``, then ``overrides``."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of settings")
        raw.update(loaded or {})
    env = os.environ if env is None else env
    hints = get_type_hints(Config)
    for name in hints:
        value = env.get(f"PARLEY_{name.upper()}")
        if value is not None:
            raw[name] = value
    raw.update(overrides)
    unknown = set(raw) - set(hints)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values = {name: _coerce(name, hints[name], value) for name, value in raw.items()}
    return Config(**values)
