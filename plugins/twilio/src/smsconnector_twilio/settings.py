"""The ``[plugins.twilio]`` configuration section, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smsconnector.config import Config
from smsconnector.plugin import InvalidNumber, plugin_settings, to_e164

NAME = "twilio"

_ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"
_API_KEY_SID = r"^SK[0-9a-fA-F]{32}$"
_SERVICE_SID = r"^MG[0-9a-fA-F]{32}$"


class NumberOptions(BaseModel):
    """Options for one brand number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: send this number's messages through a Messaging Service (overrides the global one)
    messaging_service_sid: str | None = Field(None, pattern=_SERVICE_SID)


class Settings(BaseModel):
    """What the plugin needs to know about the Twilio account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(pattern=_ACCOUNT_SID)
    #: signs webhooks (HMAC-SHA1) and, without an API key, authenticates REST calls
    auth_token: SecretStr | None = None
    #: an API key for REST calls instead of the auth token (recommended: revocable, no webhook power)
    api_key: str | None = Field(None, pattern=_API_KEY_SID)
    api_secret: SecretStr | None = None
    #: send through this Messaging Service unless a number names its own
    messaging_service_sid: str | None = Field(None, pattern=_SERVICE_SID)
    #: the SharedKey secret of a Webhook Setting, for webhooks signed with HMAC-SHA256
    shared_key: SecretStr | None = None
    #: where the REST API is (a fake in tests); default Twilio's own hosts
    api_base_url: str | None = None
    #: seconds one REST call may take before it counts as a network failure (and is retried)
    timeout_seconds: float = Field(15.0, gt=0, le=300)
    #: REST calls in flight at once (threads and pooled connections); default the sender's concurrency
    max_concurrent_requests: int | None = Field(None, ge=1, le=1000)
    #: per brand number options, keyed by the number in E.164
    numbers: dict[str, NumberOptions] = {}

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("numbers", mode="before")
    @classmethod
    def _e164_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        try:
            return {to_e164(str(number)): options for number, options in value.items()}
        except InvalidNumber as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _credentials(self) -> Settings:
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("api_key and api_secret go together")
        if self.auth_token is None and self.api_key is None:
            raise ValueError("set auth_token (or api_key and api_secret) for REST calls")
        if self.auth_token is None and self.shared_key is None:
            # Without either secret no inbound webhook could ever be verified, so every one would be refused.
            raise ValueError("set auth_token or shared_key: Twilio signs webhooks with one of them")
        return self

    def credentials(self) -> tuple[str, str]:
        """The Basic-auth pair for REST calls: the API key when there is one, else the account's token."""
        if self.api_key is not None and self.api_secret is not None:
            return self.api_key, self.api_secret.get_secret_value()
        assert self.auth_token is not None
        return self.account_sid, self.auth_token.get_secret_value()

    def messaging_service_for(self, brand_number: str) -> str | None:
        """The Messaging Service a brand number sends through, if any."""
        options = self.numbers.get(brand_number)
        if options is not None and options.messaging_service_sid is not None:
            return options.messaging_service_sid
        return self.messaging_service_sid


def load_settings(config: Config) -> Settings | None:
    """The validated section, or ``None`` when the deployment has no ``[plugins.twilio]`` section.

    :raises ConfigError: naming the first wrong key, e.g. ``plugins.twilio.account_sid``.
    """
    section = config.plugin(NAME)
    if not section:
        return None
    return plugin_settings(section, NAME, Settings)
