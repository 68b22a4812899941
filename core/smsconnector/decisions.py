"""What the decision hooks return: where a message goes, whether a send may happen, consent facts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .messages import MessageClass


class SegmentPolicy(enum.StrEnum):
    """What a part of a concatenated SMS becomes."""

    AS_IS = "as_is"  #: the provider already consolidated the message (Twilio)
    SEPARATE = "separate"  #: each part is its own consumer message, in order
    REASSEMBLE = "reassemble"  #: parts are joined into the message the consumer wrote


@dataclass(frozen=True, slots=True)
class Routing:
    """Where an inbound message goes, decided by the first ``smsconnector_route`` that answers.

    The host applies it in the same transaction as the message: it continues the consumer's open
    conversation (or opens one when ``new_conversation`` or there is none), records ``entry_point`` and
    ``context`` on it, queues it for ``skill`` or gives it to ``agent_id``, and queues ``replies``.
    """

    handled_by: str  #: the plugin that decided; kept on the message for reports
    skill: str | None = None
    agent_id: int | None = None
    to_agent: bool = True  #: False when the message is fully handled automatically (no agent needed)
    new_conversation: bool = False
    entry_point: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    replies: tuple[str, ...] = ()
    reply_class: MessageClass = "conversational"
    notes: tuple[str, ...] = ()  #: shown to the agent beside the message (e.g. "possible opt-out")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A send check's answer for one outbound message; ``None`` from a check means allow."""

    action: Literal["allow", "refuse", "defer"]
    code: str = "allowed"  #: machine-readable reason, e.g. ``opted_out``, ``quiet_hours``
    reason: str = ""  #: shown to the agent or API caller
    until: datetime | None = None  #: for ``defer``: the earliest time to try again
    validity_seconds: int | None = None  #: for ``allow``: the most the provider may hold the message

    @classmethod
    def refuse(cls, code: str, reason: str) -> Verdict:
        return cls("refuse", code, reason)

    @classmethod
    def defer(cls, code: str, reason: str, until: datetime) -> Verdict:
        return cls("defer", code, reason, until=until)


@dataclass(frozen=True, slots=True)
class ConsentSignal:
    """A consent fact learned outside the consumer's own SMS keywords, for the consent ledger.

    Providers report opt-outs they enforce (Twilio error 21610, Advanced Opt-Out); entry points report consent
    they obtained (an IVR caller pressing 1 to be texted, a web form's SMS checkbox), with its evidence.
    """

    consumer_number: str
    brand_number: str
    action: Literal["opt_out", "opt_in", "consent"]
    source: str  #: where it was captured, e.g. ``twilio:21610``, ``IVR call CA123``, a form URL
    provider: str | None = None  #: the provider that reported it, for provider signals
    message_id: int | None = None  #: the outbound message a provider refused
    #: for ``consent``: the message class it allows (conversational, informational, marketing)
    consent_class: MessageClass | None = None
    method: str = "provider"  #: how it was obtained: provider, ivr, web_form, agent, import...
    consumer_action: str | None = None  #: the consumer's affirmative act, in words ("pressed 1 while on hold")
    disclosure: str | None = None  #: the disclosure text the consumer was shown or heard
    recorded_by: str | None = None  #: the plugin that reports it
