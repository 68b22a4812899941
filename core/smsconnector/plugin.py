"""The plugin API: everything a plugin may import from smsconnector, in one module.

A provider or entry-point plugin imports from here and nowhere else in the host::

    from smsconnector.plugin import InboundMessage, SendResult, hookimpl, plugin_settings

These names keep their meaning across releases; anything not exported here is the host's own and may change
without notice. ``docs/plugin-api.md`` documents each of them, with the fields of every message type and every
delivery status, and a test checks that page against this module.
"""

from __future__ import annotations

from .app import App
from .config import plugin_settings
from .decisions import ConsentSignal, Routing, SegmentPolicy, Verdict
from .entrypoints import (
    EndpointSettings,
    EntryPoint,
    EntryPointSettings,
    Started,
    brand_number,
    check_texts,
    configured_number,
    mobile_number,
    start_conversation,
)
from .errors import (
    ConfigError,
    Conflict,
    Forbidden,
    Malformed,
    MessageRejected,
    NotFound,
    PermanentSendError,
    PluginConfigError,
    PluginError,
    RequestRejected,
    RetryableSendError,
    SendError,
    SmsConnectorError,
    TooLarge,
    Unauthenticated,
)
from .messages import (
    AGENT_TEXT_LIMIT,
    DeliveryStatus,
    InboundMessage,
    InvalidNumber,
    Media,
    MessageClass,
    OutboundMessage,
    SegmentInfo,
    SendResult,
    StatusUpdate,
    to_e164,
    to_sender,
    utcnow,
)
from .plugins import hookimpl
from .providers import Provider
from .proxies import environment_proxy
from .segments import SegmentedText, is_gsm, segment
from .webhooks import Received, WebhookKind, WebhookRequest

__all__ = [
    # hooks
    "hookimpl",
    "App",
    # messages
    "InboundMessage",
    "OutboundMessage",
    "StatusUpdate",
    "SendResult",
    "Media",
    "SegmentInfo",
    "DeliveryStatus",
    "MessageClass",
    "AGENT_TEXT_LIMIT",
    # webhooks
    "WebhookRequest",
    "WebhookKind",
    "Received",
    # decisions
    "Routing",
    "SegmentPolicy",
    "Verdict",
    "ConsentSignal",
    # providers
    "Provider",
    # entry points
    "EntryPoint",
    "EntryPointSettings",
    "EndpointSettings",
    "Started",
    "start_conversation",
    "check_texts",
    "mobile_number",
    "brand_number",
    "configured_number",
    # errors
    "SmsConnectorError",
    "ConfigError",
    "PluginError",
    "PluginConfigError",
    "RequestRejected",
    "Malformed",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "TooLarge",
    "MessageRejected",
    "SendError",
    "RetryableSendError",
    "PermanentSendError",
    # helpers
    "plugin_settings",
    "environment_proxy",
    "is_gsm",
    "segment",
    "SegmentedText",
    "to_e164",
    "to_sender",
    "InvalidNumber",
    "utcnow",
]
