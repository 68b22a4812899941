"""X-Twilio-Signature: the library's published vector, the shared-key variant, and what a forgery looks like."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.datastructures import Headers
from twilio.request_validator import HMAC_SHA256, SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator

from smsconnector.errors import Forbidden
from smsconnector.webhooks import WebhookRequest
from smsconnector_twilio.settings import Settings
from smsconnector_twilio.signature import verify

from .twilio_support import ACCOUNT_SID

# twilio-python's own test vector (tests/unit/test_request_validator.py).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
                 "To": "+18005551212"}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SHARED_KEY = "shared-key-secret-for-tests"


def request(url: str, params: dict[str, str], headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(provider="twilio", kind="inbound", method="POST", url=url, headers=Headers(headers),
                          body=urlencode(params).encode())


def settings(**extra: str) -> Settings:
    return Settings.model_validate({"account_sid": ACCOUNT_SID, "auth_token": VECTOR_TOKEN, **extra})


def check(url: str, params: dict[str, str], headers: dict[str, str], config: Settings | None = None) -> None:
    webhook = request(url, params, headers)
    verify(webhook, webhook.form(), config or settings())


def test_the_librarys_published_vector_is_what_the_library_computes():
    assert RequestValidator(VECTOR_TOKEN).compute_signature(VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE


def test_the_published_vector_passes_the_plugins_check():
    check(VECTOR_URL, VECTOR_PARAMS, {SIGNATURE_HEADER: VECTOR_SIGNATURE})


def test_the_vector_also_passes_with_the_default_port_in_the_url():
    # Twilio is inconsistent about :443; the validator accepts the URL with and without it.
    check("https://mycompany.com:443/myapp.php?foo=1&bar=2", VECTOR_PARAMS, {SIGNATURE_HEADER: VECTOR_SIGNATURE})


@pytest.mark.parametrize(
    ("url", "params", "headers", "reason"),
    [
        pytest.param(VECTOR_URL, VECTOR_PARAMS, {}, "missing X-Twilio-Signature", id="no header"),
        pytest.param(VECTOR_URL, VECTOR_PARAMS, {SIGNATURE_HEADER: ""}, "missing X-Twilio-Signature",
                     id="empty header"),
        pytest.param(VECTOR_URL, {**VECTOR_PARAMS, "Digits": "9999"}, {SIGNATURE_HEADER: VECTOR_SIGNATURE},
                     "does not match", id="a field changed"),
        pytest.param(VECTOR_URL, {**VECTOR_PARAMS, "Extra": ""}, {SIGNATURE_HEADER: VECTOR_SIGNATURE},
                     "does not match", id="a blank field added"),
        pytest.param("https://mycompany.com/myapp.php?foo=1&bar=3", VECTOR_PARAMS,
                     {SIGNATURE_HEADER: VECTOR_SIGNATURE}, "does not match", id="another URL"),
        pytest.param("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS,
                     {SIGNATURE_HEADER: VECTOR_SIGNATURE}, "does not match", id="http instead of https"),
        pytest.param(VECTOR_URL, VECTOR_PARAMS,
                     {SIGNATURE_HEADER: RequestValidator("old-token").compute_signature(VECTOR_URL, VECTOR_PARAMS)},
                     "does not match", id="signed with an old token"),
        pytest.param(VECTOR_URL, VECTOR_PARAMS,
                     {SIGNATURE_HEADER: VECTOR_SIGNATURE, SIGNATURE_SETTINGS_HEADER: f"key=k1,algorithm={HMAC_SHA256}"},
                     "shared_key is not configured", id="claims a shared key that is not configured"),
    ],
)
def test_a_forged_or_stale_signature_is_refused(url, params, headers, reason):
    with pytest.raises(Forbidden, match=reason):
        check(url, params, headers)


def test_a_shared_key_signature_with_hmac_sha256_passes():
    signature = RequestValidator(SHARED_KEY).compute_signature(VECTOR_URL, VECTOR_PARAMS, HMAC_SHA256)
    headers = {SIGNATURE_HEADER: signature, SIGNATURE_SETTINGS_HEADER: f"key=k1,algorithm={HMAC_SHA256}"}

    check(VECTOR_URL, VECTOR_PARAMS, headers, settings(shared_key=SHARED_KEY))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({
            SIGNATURE_HEADER: RequestValidator(VECTOR_TOKEN).compute_signature(VECTOR_URL, VECTOR_PARAMS, HMAC_SHA256),
            SIGNATURE_SETTINGS_HEADER: f"key=k1,algorithm={HMAC_SHA256}"}, id="sha256 keyed with the auth token"),
        pytest.param({
            SIGNATURE_HEADER: RequestValidator(SHARED_KEY).compute_signature(VECTOR_URL, VECTOR_PARAMS),
            SIGNATURE_SETTINGS_HEADER: f"key=k1,algorithm={HMAC_SHA256}"}, id="sha1 with the shared key"),
        pytest.param({
            SIGNATURE_HEADER: RequestValidator(SHARED_KEY).compute_signature(VECTOR_URL, VECTOR_PARAMS, HMAC_SHA256),
            SIGNATURE_SETTINGS_HEADER: "key=k1,algorithm=HMAC_SHA512"}, id="an algorithm the library does not know"),
        pytest.param({
            SIGNATURE_HEADER: RequestValidator(SHARED_KEY).compute_signature(VECTOR_URL, VECTOR_PARAMS, HMAC_SHA256)},
            id="a shared-key signature without its settings header"),
    ],
)
def test_a_shared_key_forgery_is_refused(headers):
    with pytest.raises(Forbidden):
        check(VECTOR_URL, VECTOR_PARAMS, headers, settings(shared_key=SHARED_KEY))


def test_without_the_auth_token_only_shared_key_signatures_can_pass():
    config = Settings.model_validate({"account_sid": ACCOUNT_SID, "api_key": "SK" + "ab" * 16, "api_secret": "s",
                                      "shared_key": SHARED_KEY})

    with pytest.raises(Forbidden, match="auth_token is not configured"):
        check(VECTOR_URL, VECTOR_PARAMS, {SIGNATURE_HEADER: VECTOR_SIGNATURE}, config)
