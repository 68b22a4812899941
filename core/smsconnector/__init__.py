"""smsconnector: connect a brand's SMS numbers to its agents, through provider and entry-point plugins.

The public face: the ``hookimpl`` marker, the canonical message types, the decisions hooks return, and the
errors they may raise. A plugin imports from :mod:`smsconnector.plugin`, which exports these and the helpers
every provider needs (documented in docs/plugin-api.md). Everything else is internal.
"""

from .decisions import ConsentSignal, Routing, SegmentPolicy, Verdict
from .errors import (
    ConfigError,
    Forbidden,
    Malformed,
    MessageRejected,
    PermanentSendError,
    PluginError,
    RequestRejected,
    RetryableSendError,
    SendError,
    SmsConnectorError,
    Unauthenticated,
)
from .messages import (
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Media,
    OutboundMessage,
    SegmentInfo,
    SendResult,
    StatusUpdate,
    to_e164,
    to_sender,
)
from .plugins import hookimpl
from .webhooks import Received, WebhookRequest

__all__ = [
    "ConfigError",
    "ConsentSignal",
    "DeliveryStatus",
    "Forbidden",
    "InboundMessage",
    "InvalidNumber",
    "Malformed",
    "Media",
    "MessageRejected",
    "OutboundMessage",
    "PermanentSendError",
    "PluginError",
    "Received",
    "RequestRejected",
    "RetryableSendError",
    "Routing",
    "SegmentInfo",
    "SegmentPolicy",
    "SendError",
    "SendResult",
    "SmsConnectorError",
    "StatusUpdate",
    "Unauthenticated",
    "Verdict",
    "WebhookRequest",
    "hookimpl",
    "to_e164",
    "to_sender",
]
