"""``[plugins.automation]``: the endpoint's token, the auto-replies, the reply window and the limits of a request."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator

from smsconnector.plugin import AGENT_TEXT_LIMIT, EndpointSettings, check_texts

NAME = "automation"
DEFAULT_AUTO_REPLY = ("Thanks for your reply. This is an automated message and replies here are not read. "
                      "Reply HELP for help or STOP to opt out.")


class Settings(EndpointSettings):
    """What a deployment configures; every key has a default except the token the brand's systems present."""

    #: the answer to a reply under the ``auto_reply`` policy, unless the campaign has its own
    auto_reply: str = Field(DEFAULT_AUTO_REPLY, min_length=1, max_length=AGENT_TEXT_LIMIT)
    #: auto-replies by campaign name
    auto_replies: dict[str, str] = {}
    #: how long after a send a reply still answers it, unless the request says otherwise
    reply_window_minutes: int = Field(24 * 60, ge=1, le=30 * 24 * 60)
    #: recipients one request may carry
    max_recipients: int = Field(1000, ge=1, le=100_000)
    #: the largest request body accepted
    max_body_bytes: int = Field(1024 * 1024, ge=1024)

    @field_validator("auto_replies")
    @classmethod
    def _texts(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return check_texts(value, what="auto-reply")

    def auto_reply_for(self, campaign: str) -> str:
        """The answer to a reply to ``campaign``'s texts under the ``auto_reply`` policy."""
        return self.auto_replies.get(campaign, self.auto_reply)
