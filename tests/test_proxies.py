"""The proxy a provider plugin's API calls take, as the environment names it."""

from __future__ import annotations

import pytest

from smsconnector.proxies import environment_proxy
from smsconnector.testing import PROXY_VARIABLES


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_none_named_means_direct():
    assert environment_proxy("https://api.twilio.com") is None


def test_the_proxy_for_the_urls_scheme_is_taken(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://other.internal:3128")

    assert environment_proxy("https://api.twilio.com") == "http://user:secret@proxy.internal:3128"
    assert environment_proxy("http://127.0.0.1:8080") == "http://other.internal:3128"


def test_all_proxy_covers_any_scheme_and_a_bare_host_means_http(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "proxy.internal:3128")

    assert environment_proxy("https://smsc.openmarket.com") == "http://proxy.internal:3128"


@pytest.mark.parametrize("no_proxy", ["api.twilio.com", ".twilio.com", "example.com,twilio.com", "*"])
def test_no_proxy_exempts_the_host(monkeypatch, no_proxy):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)

    assert environment_proxy("https://api.twilio.com") is None
    assert environment_proxy("https://smsc.openmarket.com") == (None if no_proxy == "*" else
                                                                 "http://proxy.internal:3128")
