"""``[plugins.ivr]``: the endpoint's token, the opening texts per skill, and how long an offer stands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import Field, field_validator

from smsconnector.plugin import AGENT_TEXT_LIMIT, EndpointSettings, check_texts

NAME = "ivr"
DEFAULT_TEMPLATE = ("Thanks for calling. Reply to this text and one of our agents will pick up where your call left "
                    "off. Msg & data rates may apply. Reply STOP to opt out.")


class Settings(EndpointSettings):
    """What a deployment configures; every key has a default except the token the IVR presents."""

    #: seconds a caller has to reply before the offer lapses and a reply is routed as any other text
    expires_after_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    #: the opening text for skills without a template of their own
    default_template: str = Field(DEFAULT_TEMPLATE, min_length=1, max_length=AGENT_TEXT_LIMIT)
    #: opening text per skill; a skill named here is a known skill
    templates: dict[str, str] = {}

    @field_validator("templates")
    @classmethod
    def _texts(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return check_texts(value, what="template")

    def named_skills(self) -> Iterable[str]:
        """The ``skills`` setting and the skills with a template."""
        return (*self.skills, *self.templates)

    def template(self, skill: str) -> str:
        """The opening text for a deflection to ``skill``."""
        return self.templates.get(skill, self.default_template)
