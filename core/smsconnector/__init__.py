"""smsconnector: connect a brand's SMS numbers to its agents, through provider and entry-point plugins.

The public face for plugin authors: the ``hookimpl`` marker, the canonical message types, the decisions
hooks return, and the errors they may raise. Everything else is internal.
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
