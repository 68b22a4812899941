"""``[plugins.vonage]``: the account we send with, the secret Vonage signs its webhooks with, and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

NAME = "vonage"
#: Vonage's SMS REST API (the host its documentation and SDKs still name).
DEFAULT_API_BASE_URL = "https://rest.nexmo.com"

#: The signing methods of Vonage's dashboard: ``md5hash`` (MD5 of the parameters with the secret appended, the
#: default) and HMAC keyed with the secret over MD5, SHA-1, SHA-256 or SHA-512.
SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]


class Settings(BaseModel):
    """The plugin's configuration; every key is optional so that an unconfigured install serves nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the account's API key and secret, for sending
    api_key: str | None = None
    api_secret: SecretStr | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    #: the account's signature secret and the method chosen for it in Vonage's dashboard; without a secret
    #: every webhook is refused, since nothing else tells Vonage's requests from anyone's
    signature_secret: SecretStr | None = None
    signature_method: SignatureMethod = "md5hash"
    #: how far a webhook's signed ``timestamp`` may be from our clock, either way, before it is refused as stale
    max_signature_age_seconds: int = Field(default=300, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=20, ge=1)

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pair(self) -> Settings:
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("api_key and api_secret go together: set both or neither")
        return self
