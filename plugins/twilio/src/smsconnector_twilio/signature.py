"""Checking that a webhook really comes from Twilio, with the official library's ``RequestValidator``.

Twilio signs the full URL it requested followed by every POST parameter (sorted by name, values sorted),
with HMAC-SHA1 keyed by the account's auth token; or, when a Webhook Rule with a SharedKey matches the URL,
with the algorithm named in ``X-Twilio-Webhooks-Signature-Settings`` keyed by that SharedKey's secret.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from smsconnector.errors import Forbidden
from smsconnector.webhooks import WebhookRequest

from .settings import Settings


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
    # validate() also accepts the URL with the default port added or removed, as Twilio itself is
    # inconsistent about it; an unsupported algorithm makes it return False.
    if not RequestValidator(secret).validate(request.url, form, signature, algorithm=algorithm):
        name = f"shared key, {algorithm}" if settings_header else f"auth token, {HMAC_SHA1}"
        raise Forbidden(f"{SIGNATURE_HEADER} does not match this request (checked with the {name})")
