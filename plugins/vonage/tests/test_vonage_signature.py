"""The signature Vonage puts on its webhooks, checked against the vectors Vonage's own SDK is tested with."""

from __future__ import annotations

import pytest

from smsconnector.errors import Forbidden
from smsconnector_vonage.signature import signature, verify

#: parameters and secret ("secret") of the signature tests in Vonage's Python SDK, with the digest it expects
PARAMS = {"a": "1", "b": "2", "timestamp": "1461605396"}
SDK_VECTORS = {
    "md5hash": "6af838ef94998832dbfc29020b564830",
    "md5": "c15c21ced558c93a226c305f58f902f2",
    "sha1": "3e19a4e6880fdc2c1426bfd0587c98b9532f0210",
    "sha256": "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24",
    "sha512": "812a18f76680fa0fe1b8bd9ee1625466ceb1bd96242e4d050d2cfd9a7b40166c"
    "63ed26ec9702168781b6edcf1633db8ff95af9341701004eec3fcf9550572ee8",
}


@pytest.mark.parametrize(("method", "expected"), SDK_VECTORS.items())
def test_each_method_gives_the_sdks_digest(method: str, expected: str) -> None:
    assert signature(PARAMS, "secret", method) == expected  # type: ignore[arg-type]


def test_sig_itself_is_left_out_and_ampersands_and_equals_in_values_are_underscores() -> None:
    plain = signature({"text": "5 _ 6 _ 11", "timestamp": "1"}, "secret", "sha256")

    assert signature({"text": "5 & 6 = 11", "timestamp": "1", "sig": "x"}, "secret", "sha256") == plain


def test_an_upper_case_signature_is_accepted() -> None:
    verify({**PARAMS, "sig": SDK_VECTORS["sha1"].upper()}, "secret", "sha1", now=1461605396, max_age=300)


@pytest.mark.parametrize(
    ("params", "now", "reason"),
    [
        ({**PARAMS, "sig": SDK_VECTORS["md5hash"]}, 1461605396 + 301, "from now"),
        ({**PARAMS, "sig": SDK_VECTORS["md5hash"]}, 1461605396 - 301, "from now"),
        ({**PARAMS, "sig": SDK_VECTORS["md5"]}, 1461605396, "does not match"),
        (PARAMS, 1461605396, "not signed"),
        ({"a": "1", "sig": SDK_VECTORS["md5hash"]}, 1461605396, "timestamp"),
        ({**PARAMS, "timestamp": "١٤٦١٦٠٥٣٩٦", "sig": SDK_VECTORS["md5hash"]}, 1461605396, "timestamp"),
    ],
    ids=["stale", "from the future", "another method", "unsigned", "no timestamp", "non-ASCII digits"],
)
def test_a_wrong_missing_or_stale_signature_is_forbidden(params: dict[str, str], now: int, reason: str) -> None:
    with pytest.raises(Forbidden, match=reason):
        verify(params, "secret", "md5hash", now=now, max_age=300)
