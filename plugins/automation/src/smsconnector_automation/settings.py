"""``[plugins.automation]``: the endpoint's token, the auto-replies, the reply window and the limits of a request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smsconnector.plugin import AGENT_TEXT_LIMIT, plugin_settings

if TYPE_CHECKING:
    from smsconnector.config import Config

NAME = "automation"
DEFAULT_AUTO_REPLY = ("Thanks for your reply. This is an automated message and replies here are not read. "
                      "Reply HELP for help or STOP to opt out.")


class Settings(BaseModel):
    """What a deployment configures; every key has a default except the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the bearer token the brand's systems present; without one the endpoint refuses every request
    token: str | None = Field(None, min_length=1)
    #: the answer to a reply under the ``auto_reply`` policy, unless the campaign has its own
    auto_reply: str = Field(DEFAULT_AUTO_REPLY, min_length=1, max_length=AGENT_TEXT_LIMIT)
    #: auto-replies by campaign name
    auto_replies: dict[str, str] = {}
    #: how long after a send a reply still answers it, unless the request says otherwise
    reply_window_minutes: int = Field(24 * 60, ge=1, le=30 * 24 * 60)
    #: further skills replies may be routed to, beside the skills of the configured numbers
    skills: tuple[str, ...] = ()
    #: how a recipient number without a leading + is read (ISO region)
    default_region: str = "US"
    #: recipients one request may carry
    max_recipients: int = Field(1000, ge=1, le=100_000)
    #: the largest request body accepted
    max_body_bytes: int = Field(1024 * 1024, ge=1024)

    @field_validator("auto_replies")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        for campaign, text in value.items():
            if not text.strip():
                raise ValueError(f"the auto-reply for '{campaign}' is empty")
            if len(text) > AGENT_TEXT_LIMIT:
                raise ValueError(f"the auto-reply for '{campaign}' is {len(text)} characters; the limit is "
                                 f"{AGENT_TEXT_LIMIT}")
        return value

    @field_validator("skills", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{value}' is not a region phonenumbers knows (e.g. US, GB, FR)")
        return value.upper()

    def auto_reply_for(self, campaign: str) -> str:
        return self.auto_replies.get(campaign, self.auto_reply)


def load(config: Config) -> Settings:
    """Validate ``[plugins.automation]``; a wrong value stops start-up naming its key."""
    return plugin_settings(config, NAME, Settings)


def known_skills(settings: Settings, config: Config) -> frozenset[str]:
    """A skill is known when a configured number serves it or this plugin's configuration names it."""
    return frozenset({n.skill for n in config.numbers} | set(settings.skills))
