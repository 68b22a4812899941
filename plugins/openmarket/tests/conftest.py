"""Fixtures for the OpenMarket plugin's tests: the fake OpenMarket and hosts configured to talk to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from smsconnector.app import App
from smsconnector.testing import BRAND_NUMBER, eventually
from smsconnector_openmarket.fake import FakeOpenMarket

T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeOpenMarket]:
    """A fake OpenMarket on a loopback port."""
    with FakeOpenMarket() as server:
        yield server


@pytest.fixture
def openmarket_app(make_app: Callable[..., App], fake: FakeOpenMarket) -> Callable[..., App]:
    """``openmarket_app(openmarket={...}, **config)``: a host whose brand number is served by OpenMarket (the fake)."""

    def make(*, openmarket: dict[str, Any] | None = None, **overrides: Any) -> App:
        overrides.setdefault("numbers", [{"number": BRAND_NUMBER, "provider": "openmarket", "skill": "support"}])
        return make_app(plugins={"openmarket": fake.plugin_config(**(openmarket or {}))}, **overrides)

    return make



@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    """:func:`eventually`, for tests that wait for something asynchronous."""
    return eventually


@pytest.fixture
def app_defaults() -> dict[str, Any]:
    """These tests exercise sending mechanics, not consent.

    When the compliance plugin is installed too (the integration environment), its default rule -- a
    consumer must have texted before a conversational reply -- would refuse replies these tests send to
    numbers that never texted. Consent is the compliance plugin's own tests' subject.
    """
    return {"plugins": {"compliance": {"consent": {"conversational": "none"}}}}
