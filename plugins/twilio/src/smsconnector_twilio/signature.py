"""Checking that a webhook really comes from Twilio, with the official library's ``RequestValidator``.

Twilio signs the full URL it requested followed by every POST parameter (sorted by name, values sorted),
with HMAC-SHA1 keyed by the account's auth token; or, when a Webhook Rule with a SharedKey matches the URL,
with the algorithm named in ``X-Twilio-Webhooks-Signature-Settings`` keyed by that SharedKey's secret.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterator

from starlette.datastructures import FormData
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from smsconnector.plugin import Forbidden, WebhookRequest

from .settings import Settings

#: the query parameter of a JSON webhook's body hash, which only validate() checks
_BODY_HASH = "bodySHA256"


class _Params:
    """The form as the validator reads it: its names, and every value of a name at once. It asks ``getall``
    first (Flask's MultiDict), then ``getlist``; answering the first spares it a raised and caught error for
    every name. A view, not a copy: the form is read once more, not copied first."""

    __slots__ = ("_form", "getall")

    def __init__(self, form: FormData) -> None:
        self._form = form
        self.getall = form.getlist

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)


@functools.lru_cache(maxsize=8)
def _validator(secret: str) -> RequestValidator:
    return RequestValidator(secret)


def verify(request: WebhookRequest, form: FormData, settings: Settings) -> None:
    """Return quietly when ``request`` carries Twilio's valid signature over its public URL and all of ``form``.

    ``request.url`` is the URL the deployment is reached at (the host rebuilds it from ``public_url`` or the
    forwarded headers), which is what Twilio signed; ``form`` keeps blank values and repeated keys, which
    the signature covers too.

    :raises Forbidden: the signature is missing, wrong, or made with a secret this deployment does not hold.
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise Forbidden(f"missing {SIGNATURE_HEADER} header")
    settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    algorithm = get_signature_algorithm(settings_header)
    if settings_header:
        secret = settings.shared_key.get_secret_value() if settings.shared_key else None
        missing = "signed with a shared key, but plugins.twilio.shared_key is not configured"
    else:
        secret = settings.auth_token.get_secret_value() if settings.auth_token else None
        missing = "signed with the auth token, but plugins.twilio.auth_token is not configured"
    if secret is None:
        raise Forbidden(missing)
    validator = _validator(secret)
    params = _Params(form)
    # validate() computes the signature twice, with the default port added and removed, as Twilio itself is
    # inconsistent about it (an unsupported algorithm makes it return False). The URL as configured is the
    # one Twilio signs unless told otherwise, so that one is checked first, once.
    supported = (algorithm or HMAC_SHA1).upper() in (HMAC_SHA1, HMAC_SHA256)
    if supported and _BODY_HASH not in request.url:
        if hmac.compare_digest(validator.compute_signature(request.url, params, algorithm), signature):
            return
    if not validator.validate(request.url, params, signature, algorithm=algorithm):
        name = f"shared key, {algorithm}" if settings_header else f"auth token, {HMAC_SHA1}"
        raise Forbidden(f"{SIGNATURE_HEADER} does not match this request (checked with the {name})")
