"""The errors smsconnector raises and plugins may raise.

::

    SmsConnectorError
    ├── ConfigError            a configuration value is missing or wrong (names the key)
    ├── PluginError            a plugin failed to import, validate or configure (names the plugin)
    │   └── PluginConfigError  its configuration is missing or wrong (names the plugin and the setting)
    ├── RequestRejected        an HTTP request (webhook or API) is refused; nothing is stored
    │   ├── Malformed          400: the body cannot be parsed
    │   ├── Unauthenticated    401: credentials are missing or wrong
    │   ├── Forbidden          403: a signature is forged or stale, or the caller lacks the right
    │   ├── NotFound           404: no such provider, conversation, agent...
    │   │   └── UnknownProvider    no plugin receives or sends for that provider
    │   ├── MethodNotAllowed   405: a webhook in a method its provider does not use (names the ones it does)
    │   ├── Conflict           409: the request contradicts the current state
    │   ├── TooLarge           413: the body exceeds ``max_body_bytes``
    │   └── MessageRejected    422: an outbound message breaks a rule (length, number, empty, opt-out)
    └── SendError              raised by a ``smsconnector_send`` implementation
        ├── RetryableSendError the provider may accept it later (429, 5xx, network)
        └── PermanentSendError the provider will never accept it (kept with its code)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


class SmsConnectorError(Exception):
    """Base class of every error smsconnector raises on purpose."""


class ConfigError(SmsConnectorError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"configuration {key}: {reason}")
        self.key = key
        self.reason = reason


class PluginError(SmsConnectorError):
    """A plugin could not be loaded, validated or configured."""

    def __init__(self, plugin: str, cause: str, *, distribution: str | None = None) -> None:
        who = f"plugin '{plugin}'" + (f" ({distribution})" if distribution else "")
        super().__init__(f"{who}: {cause}")
        self.plugin = plugin
        self.cause = cause


class PluginConfigError(PluginError):
    """A plugin's configuration is missing or wrong: start-up stops naming the plugin and the setting.

    The host raises it when a plugin's ``smsconnector_configure`` raises :class:`ConfigError`.
    """

    def __init__(self, plugin: str, key: str, reason: str) -> None:
        super().__init__(plugin, f"configuration {key}: {reason}")
        self.key = key
        self.reason = reason


class RequestRejected(SmsConnectorError):
    """An HTTP request is refused with ``status`` and a JSON error body; nothing is stored.

    ``headers`` go out with the response (a subclass sets ``WWW-Authenticate`` for its scheme).
    """

    status: int = 400
    code: str = "rejected"
    headers: Mapping[str, str] = {}

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(RequestRejected):
    """The request body cannot be parsed."""

    status = 400
    code = "malformed"


class Unauthenticated(RequestRejected):
    """Credentials are missing or wrong."""

    status = 401
    code = "unauthenticated"
    headers = {"WWW-Authenticate": 'Bearer realm="smsconnector"'}


class Forbidden(RequestRejected):
    """The request's signature or source is not trusted, or the caller lacks the right."""

    status = 403
    code = "forbidden"


class NotFound(RequestRejected):
    """What the request names does not exist (or is not the caller's to see)."""

    status = 404
    code = "not_found"


class UnknownProvider(NotFound):
    """No enabled plugin receives or sends for this provider."""

    code = "unknown_provider"


class MethodNotAllowed(RequestRejected):
    """A webhook arrived in an HTTP method its provider's plugin does not accept; ``Allow`` names those it does."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, reason: str, *, allowed: Collection[str]) -> None:
        super().__init__(reason)
        self.headers = {"Allow": ", ".join(sorted(allowed))}


class Conflict(RequestRejected):
    """The request contradicts the current state (closing a closed conversation)."""

    status = 409
    code = "conflict"


class TooLarge(RequestRejected):
    """The request body is larger than the configured limit."""

    status = 413
    code = "too_large"


class Unavailable(RequestRejected):
    """The request could not be stored in time; the provider should send it again (a retry is deduplicated)."""

    status = 503
    code = "unavailable"
    headers = {"Retry-After": "1"}


class MessageRejected(RequestRejected):
    """An outbound message breaks a rule and was not queued."""

    status = 422

    def __init__(self, reason: str, *, code: str = "invalid_message") -> None:
        super().__init__(reason)
        self.code = code


class SendError(SmsConnectorError):
    """A provider did not accept a message."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RetryableSendError(SendError):
    """The provider may accept the message later; the sender retries with backoff.

    :param retry_after: seconds the provider asked us to wait, when it said.
    :param maybe_accepted: the request may have reached the provider all the same (it timed out, or the
        connection dropped, after it was sent): before sending again, the sender asks the provider whether it
        has the message (``smsconnector_find_sent``).
    """

    def __init__(self, reason: str, *, code: str | None = None, retry_after: float | None = None,
                 maybe_accepted: bool = False) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after
        self.maybe_accepted = maybe_accepted


class PermanentSendError(SendError):
    """The provider will never accept this message; it is recorded as failed with ``code``.

    :param opted_out: the provider refused because the consumer opted out (Twilio 21610);
        the host then reports a consent signal so compliance records it.
    """

    def __init__(self, reason: str, *, code: str | None = None, opted_out: bool = False) -> None:
        super().__init__(reason, code=code)
        self.opted_out = opted_out
