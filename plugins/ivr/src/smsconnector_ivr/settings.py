"""``[plugins.ivr]``: the endpoint's token, the opening texts per skill, and how long an offer stands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smsconnector.plugin import AGENT_TEXT_LIMIT, plugin_settings

if TYPE_CHECKING:
    from smsconnector.config import Config

NAME = "ivr"
DEFAULT_TEMPLATE = ("Thanks for calling. Reply to this text and one of our agents will pick up where your call left "
                    "off. Msg & data rates may apply. Reply STOP to opt out.")

class Settings(BaseModel):
    """What a deployment configures; every key has a default except the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the bearer token the IVR presents; without one the endpoint refuses every request
    token: str | None = Field(None, min_length=1)
    #: seconds a caller has to reply before the offer lapses and a reply is routed as any other text
    expires_after_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    #: the opening text for skills without a template of their own
    default_template: str = Field(DEFAULT_TEMPLATE, min_length=1, max_length=AGENT_TEXT_LIMIT)
    #: opening text per skill; a skill named here is a known skill
    templates: dict[str, str] = {}
    #: further skills an IVR may deflect to, beside the skills of the configured numbers
    skills: tuple[str, ...] = ()
    #: how a caller number without a leading + is read (ISO region)
    default_region: str = "US"

    @field_validator("templates")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        for skill, text in value.items():
            if not text.strip():
                raise ValueError(f"the template for '{skill}' is empty")
            if len(text) > AGENT_TEXT_LIMIT:
                raise ValueError(f"the template for '{skill}' is {len(text)} characters; the limit is "
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

    def template(self, skill: str) -> str:
        return self.templates.get(skill, self.default_template)


def load(config: Config) -> Settings:
    """Validate ``[plugins.ivr]``; a wrong value stops start-up naming its key."""
    return plugin_settings(config, NAME, Settings)


def known_skills(settings: Settings, config: Config) -> frozenset[str]:
    """A skill is known when a configured number serves it or this plugin's configuration names it."""
    return frozenset({n.skill for n in config.numbers} | set(settings.skills) | set(settings.templates))
