"""Fixtures for the Vonage plugin's tests: the fake Vonage and hosts configured to talk to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smsconnector.app import App
from smsconnector.testing import BRAND_NUMBER
from smsconnector_vonage.fake import FakeVonage


@pytest.fixture
def fake() -> Iterator[FakeVonage]:
    """A fake Vonage on a loopback port."""
    with FakeVonage() as server:
        yield server


@pytest.fixture
def vonage_app(make_app: Callable[..., App], fake: FakeVonage) -> Callable[..., App]:
    """``vonage_app(vonage={...}, **config)``: a host whose brand number is served by Vonage (the fake)."""

    def make(*, vonage: dict[str, Any] | None = None, **overrides: Any) -> App:
        overrides.setdefault("numbers", [{"number": BRAND_NUMBER, "provider": "vonage", "skill": "support"}])
        return make_app(plugins={"vonage": fake.plugin_config(**(vonage or {}))}, **overrides)

    return make


@pytest.fixture
def app_defaults() -> dict[str, Any]:
    """These tests exercise Vonage's protocol, not consent: with the compliance plugin installed too (the
    integration environment), its default rule would refuse replies to numbers that never texted."""
    return {"plugins": {"compliance": {"consent": {"conversational": "none"}}}}
