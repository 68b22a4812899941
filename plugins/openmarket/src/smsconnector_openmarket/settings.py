"""``[plugins.openmarket]``: the account we send with, the credentials OpenMarket calls us with, and limits."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: OpenMarket's production API; its test environment ("CIE") sends nothing: http://smsc-cie.openmarket.com
DEFAULT_API_BASE_URL = "https://smsc.openmarket.com"


class Settings(BaseModel):
    """The plugin's configuration; every key is optional so that an unconfigured install serves nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the OpenMarket account id (``000-000-000-00000``) and password for sending
    account_id: str | None = None
    password: SecretStr | None = None
    api_base_url: str = DEFAULT_API_BASE_URL
    #: the Basic credentials OpenMarket is provisioned to call our webhooks with
    inbound_username: str | None = None
    inbound_password: SecretStr | None = None
    #: when set, webhooks are only accepted from these networks (CIDR), checked against the connecting address
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    #: ``options.programId``, which OpenMarket requires for US short codes
    program_id: str | None = None
    #: how the bytes of a hex-encoded MO are read when the MO does not say: ``auto`` guesses (see README)
    inbound_charset: Literal["auto", "gsm", "latin-1", "utf-8", "utf-16"] = "auto"
    #: how ``auto`` reads a part whose bytes are all 7-bit: GSM 03.38 septets, or ASCII text (see README)
    inbound_7bit: Literal["gsm", "ascii"] = "gsm"
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=20, ge=1)

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        for first, second in (("account_id", "password"), ("inbound_username", "inbound_password")):
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"{first} and {second} go together: set both or neither")
        return self

    def allows(self, address: str | None) -> bool:
        """Whether a webhook from ``address`` may be accepted (any address when no network is configured)."""
        if not self.allowed_networks:
            return True
        try:
            ip = ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.allowed_networks)
