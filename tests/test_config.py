"""Configuration: a TOML file, environment variables over it, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from smsconnector.config import load_config, plugin_settings
from smsconnector.decisions import SegmentPolicy
from smsconnector.errors import ConfigError

TOML = """
database_url = "postgresql://db.example/sms"
public_url = "https://sms.example.com/"

[sender]
retry_for_seconds = 1800

[providers.openmarket]
segment_policy = "separate"

[[numbers]]
number = "+1 (415) 555-0100"
provider = "twilio"
skill = "sales"
rate_per_second = 1

[plugins]
disabled = ["ivr"]

[plugins.twilio]
account_sid = "AC123"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "smsconnector.toml"
    path.write_text(TOML)
    return path


def test_file_is_read_and_normalized(config_file):
    config = load_config(config_file, env={})

    assert config.database_url == "postgresql://db.example/sms"
    assert config.public_url == "https://sms.example.com"
    assert config.sender.retry_for_seconds == 1800 and config.sender.backoff_base_seconds == 1.0
    assert config.provider("openmarket").segment_policy is SegmentPolicy.SEPARATE
    assert config.provider("twilio").segment_policy is None
    assert config.number("+14155550100").skill == "sales"  # numbers are kept in E.164
    assert config.plugins.disabled == ("ivr",)
    assert config.plugin("twilio") == {"account_sid": "AC123"} and config.plugin("nosuch") == {}


def test_environment_overrides_the_file(config_file):
    config = load_config(config_file, env={
        "SMSCONNECTOR_DATABASE_URL": "sqlite:///other.db",
        "SMSCONNECTOR_SENDER__RETRY_FOR_SECONDS": "900",
        "SMSCONNECTOR_PLUGINS__TWILIO__AUTH_TOKEN": "tok",
        "SMSCONNECTOR_API__ADMIN_TOKENS": "a, b",
        "UNRELATED": "x",
    })

    assert config.database_url == "sqlite:///other.db"
    assert config.sender.retry_for_seconds == 900
    assert config.plugin("twilio") == {"account_sid": "AC123", "auth_token": "tok"}
    assert config.api.admin_tokens == ("a", "b")


@pytest.mark.parametrize(("overrides", "env", "key"), [
    ({"sender": {"retry_for_seconds": 0}}, {}, "sender.retry_for_seconds"),
    ({}, {"SMSCONNECTOR_SENDER__RETRY_FOR_SECONDS": "long"}, "sender.retry_for_seconds"),
    ({"public_url": "sms.example.com"}, {}, "public_url"),
    ({"numbers": [{"number": "12", "provider": "twilio"}]}, {}, "numbers.0.number"),
    ({"providers": {"openmarket": {"segment_policy": "glue"}}}, {}, "providers.openmarket.segment_policy"),
    ({"sendr": {}}, {}, "sendr"),
    ({"worker": {"poll_interval_seconds": 0}}, {}, "worker.poll_interval_seconds"),
    ({}, {"SMSCONNECTOR_WORKER__IN_SERVER": "sometimes"}, "worker.in_server"),
    ({}, {"SMSCONNECTOR_LOG_LEVEL": "verbose"}, "log_level"),
])
def test_bad_value_names_its_key(overrides, env, key):
    with pytest.raises(ConfigError) as caught:
        load_config(env=env, overrides=overrides)

    assert caught.value.key == key
    assert str(caught.value).startswith(f"configuration {key}: ")


def test_the_removed_attempt_count_is_refused_naming_its_replacement():
    # Refused, not ignored: a deployment that had set it low to fail fast would otherwise retry for hours.
    with pytest.raises(ConfigError, match="max_attempts was replaced by retry_for_seconds"):
        load_config(env={"SMSCONNECTOR_SENDER__MAX_ATTEMPTS": "3"})


def test_unreadable_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("database_url = ")

    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml", env={})


def test_unsupported_database_is_refused_at_start_up(make_app):
    with pytest.raises(ConfigError, match="database_url: unsupported database 'mysql'"):
        make_app(database_url="mysql://localhost/sms", migrate=False)


class _Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries: int = Field(3, ge=0)


@pytest.mark.parametrize(("section", "key", "reason"), [
    ({"retries": -1}, "plugins.example.retries", "greater than or equal to 0"),
    ({"colour": "red"}, "plugins.example.colour", "Extra inputs are not permitted"),
])
def test_plugin_settings_name_the_first_wrong_key(section, key, reason):
    config = load_config(env={}, overrides={"plugins": {"example": section}})
    with pytest.raises(ConfigError) as info:
        plugin_settings(config, "example", _Example)
    assert info.value.key == key and reason in info.value.reason
    with pytest.raises(ConfigError) as info:  # the section itself, as a plugin's own loader passes it
        plugin_settings(section, "example", _Example)
    assert info.value.key == key


def test_plugin_settings_default_when_the_section_is_absent():
    assert plugin_settings(load_config(env={}), "example", _Example) == _Example()
    config = load_config(env={}, overrides={"plugins": {"example": {"retries": 5}}})
    assert plugin_settings(config, "example", _Example).retries == 5
