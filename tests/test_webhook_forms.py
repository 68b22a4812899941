"""Form-encoded webhook bodies (Twilio's): parsed exactly as the standard library parses them, which is what
the sender signed over."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsconnector.errors import Malformed
from smsconnector.webhooks import WebhookRequest, parse_form

#: the characters that mean something in a form body, and some that need decoding
_PIECES = st.sampled_from(["&", "=", "+", "%", "%2B", "%20", "%3D", "%26", "%E2%9C%93", "%ZZ", "%e9", "a", "Body",
                           "é", "✓", " ", "0", "9"])


def _standard(text: str) -> list[tuple[str, str]] | type[ValueError]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        return ValueError


def _ours(text: str) -> list[tuple[str, str]] | type[ValueError]:
    try:
        return parse_form(text)
    except ValueError:
        return ValueError


@given(st.lists(_PIECES, max_size=30).map("".join) | st.text(max_size=60))
def test_a_body_parses_as_the_standard_library_parses_it(text: str) -> None:
    assert _ours(text) == _standard(text)


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=8))
def test_what_urlencode_wrote_comes_back_unchanged(pairs: list[tuple[str, str]]) -> None:
    assert parse_form(urlencode(pairs)) == pairs


@pytest.mark.parametrize("body", [b"Body=hi&&From=x", b"Body", b"\xff=1"], ids=["empty field", "no =", "not UTF-8"])
def test_a_body_that_is_not_a_form_is_malformed(body: bytes) -> None:
    request = WebhookRequest(provider="twilio", kind="inbound", method="POST", url="https://x/", headers=None,  # type: ignore[arg-type]
                             body=body)

    with pytest.raises(Malformed, match="body is not form-encoded"):
        request.form()
