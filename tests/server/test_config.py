"""Settings: config.yaml's defaults, PARLEY_* overrides, and bad values that name the setting."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from parley.server.config import Config, ConfigError, load_config

CONFIG_YAML = Path(__file__).resolve().parents[2] / "config.yaml"
SECRET = "s" * 32
VALID = {"jwt_secret": SECRET, "api_key": "k"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_yaml_loads_with_the_documented_defaults() -> None:
    config = load_config(CONFIG_YAML, env={})
    # config.yaml carries development secrets; every other value is Config's default.
    assert config.jwt_secret and config.api_key
    defaults = Config(jwt_secret=SECRET, api_key="k")
    for field in dataclasses.fields(Config):
        if field.name not in VALID:
            assert getattr(config, field.name) == getattr(defaults, field.name), field.name
    assert config.ws_port == 8700
    assert config.api_host == "127.0.0.1"
    assert config.max_frame_bytes == 64 * 1024
    assert config.auth_timeout == 5.0
    assert config.jwt_algorithm == "HS256"
    assert config.store.startswith("sqlite:///")


def test_every_setting_is_in_config_yaml_with_a_comment() -> None:
    lines = CONFIG_YAML.read_text(encoding="utf-8").splitlines()
    for field in dataclasses.fields(Config):
        line = next((x for x in lines if x.startswith(f"{field.name}:")), None)
        assert line is not None, f"{field.name} is missing from config.yaml"
        assert re.search(r"\s#\s*\S", line), f"{field.name} has no comment in config.yaml"


def test_environment_overrides_the_file() -> None:
    config = load_config(CONFIG_YAML, env={"PARLEY_WS_PORT": "9000", "PARLEY_AUTH_TIMEOUT": "2.5"})
    assert config.ws_port == 9000
    assert config.auth_timeout == 2.5


def test_arguments_override_the_environment() -> None:
    config = load_config(CONFIG_YAML, env={"PARLEY_WS_PORT": "9000"}, ws_port=0)
    assert config.ws_port == 0


def test_other_environment_variables_are_ignored() -> None:
    config = load_config(CONFIG_YAML, env={"PARLEY_NOT_A_SETTING": "1", "WS_PORT": "1"})
    assert config.ws_port == 8700


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ('ws_port: "abc"\n', "ws_port"),
        ("ws_port: 70000\n", "ws_port"),
        ("ws_port: true\n", "ws_port"),
        ("auth_timeout: 0\n", "auth_timeout"),
        ("auth_timeout: soon\n", "auth_timeout"),
        ("max_frame_bytes: 0\n", "max_frame_bytes"),
        ("jwt_algorithm: none\n", "jwt_algorithm"),
        ("jwt_algorithm: HS512\n", "jwt_algorithm"),
        ("jwt_secret: short\n", "jwt_secret"),
        ("jwt_algorithm: RS256\njwt_public_key: ''\n", "jwt_public_key"),
        ("api_key: ''\n", "api_key"),
        ("store: postgres://db/parley\n", "store"),
        ("workers: 2\n", "workers"),
        ("log_level: LOUD\n", "log_level"),
        ("member_write_rate: 0\n", "member_write_rate"),
        ("member_write_rate: -5\n", "member_write_rate"),
        ("member_write_rate: fast\n", "member_write_rate"),
        ("member_write_burst: 0\n", "member_write_burst"),
        ("member_write_burst: 2.5\n", "member_write_burst"),
        ("write_rate: 0\n", "write_rate"),
        ("retention_order_days: -1\n", "retention_order_days"),
        ("retention_listing_days: soon\n", "retention_listing_days"),
        ("retention_interval: 0\n", "retention_interval"),
        ("retention_batch: 0\n", "retention_batch"),
        ("colour: blue\n", "colour"),
    ],
)
def test_a_bad_value_names_the_setting(tmp_path: Path, text: str, setting: str) -> None:
    base = f"jwt_secret: {SECRET}\napi_key: k\nstore: sqlite:///parley.sqlite3\n"
    # Later keys win in YAML mappings, so each case overrides the valid base.
    with pytest.raises(ConfigError, match=re.escape(setting)):
        load_config(write(tmp_path, base + text), env={})


def test_a_bad_environment_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="ws_port"):
        load_config(CONFIG_YAML, env={"PARLEY_WS_PORT": "abc"})


def test_several_workers_need_the_redis_store() -> None:
    with pytest.raises(ConfigError, match="workers"):
        load_config(CONFIG_YAML, env={"PARLEY_WORKERS": "2"})
    config = load_config(
        CONFIG_YAML, env={"PARLEY_WORKERS": "2", "PARLEY_STORE": "redis://127.0.0.1:6379/0"}
    )
    assert config.workers == 2


def test_the_member_write_limit_is_set_from_the_environment() -> None:
    env = {"PARLEY_MEMBER_WRITE_RATE": "45.5", "PARLEY_MEMBER_WRITE_BURST": "500"}
    config = load_config(CONFIG_YAML, env=env)
    assert (config.member_write_rate, config.member_write_burst) == (45.5, 500)
    with pytest.raises(ConfigError, match="member_write_burst"):
        load_config(CONFIG_YAML, env={"PARLEY_MEMBER_WRITE_BURST": "lots"})


def test_one_device_meets_its_connection_limit_before_its_members_by_default() -> None:
    # The member's limit is there for members with many connections: a
    # member writing from one device must never be the one it stops.
    config = Config(**VALID)
    assert config.member_write_rate > config.write_rate
    assert config.member_write_burst > config.write_burst


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- ws_port\n"), env={})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_config(missing, env={})
