"""Contract checks a provider plugin's own tests can call."""

from __future__ import annotations

import inspect
from typing import Any

from ..messages import InboundMessage, OutboundMessage, utcnow
from ..webhooks import WebhookRequest

_OTHER = "some-other-provider"


def assert_declines_other_providers(plugin: Any, app: Any) -> None:
    """Every provider-dispatched hook of ``plugin`` returns ``None`` -- synchronously -- for another provider.

    A coroutine is not ``None``: a plugin that awaits before checking ``provider`` wins the first-result
    race for every provider, and the host would send Twilio messages through OpenMarket.
    """
    from starlette.datastructures import Headers

    request = WebhookRequest(provider=_OTHER, kind="inbound", method="POST", url="http://testserver/",
                             headers=Headers({}), body=b"")
    message = InboundMessage(provider=_OTHER, provider_message_id="x", from_number="+14155550123",
                             to_number="+14155550100")
    outbound = OutboundMessage(id=1, provider=_OTHER, from_number="+14155550100", to_number="+14155550123", text="x")
    calls = {
        "smsconnector_receive": {"provider": _OTHER, "request": request, "app": app},
        "smsconnector_normalize": {"provider": _OTHER, "event": {}, "app": app},
        "smsconnector_segment_policy": {"provider": _OTHER, "message": message, "app": app},
        "smsconnector_send": {"provider": _OTHER, "message": outbound, "app": app},
        "smsconnector_find_sent": {"provider": _OTHER, "message": outbound, "since": utcnow(), "app": app},
    }
    for hook, kwargs in calls.items():
        impl = getattr(plugin, hook, None)
        if impl is None:
            continue
        accepted = inspect.signature(impl).parameters
        result = impl(**{name: value for name, value in kwargs.items() if name in accepted})
        if hasattr(result, "close"):
            result.close()  # do not leave an un-awaited coroutine behind
        assert result is None, f"{hook} answered {result!r} for provider {_OTHER!r}; it must return None"
