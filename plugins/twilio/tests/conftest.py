"""Fixtures of the Twilio plugin's tests: the fake Twilio and apps configured to use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from smsconnector.app import App
from smsconnector.testing import LiveServer
from smsconnector_twilio.fake import FakeTwilio

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND


@pytest.fixture(scope="session")
def _fake_twilio_server() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio(_fake_twilio_server: FakeTwilio) -> FakeTwilio:
    """The fake Twilio account on loopback, as new: one server for the session, its state reset per test."""
    _fake_twilio_server.reset()
    return _fake_twilio_server


@pytest.fixture
def twilio_app(make_app: Callable[..., App], fake_twilio: FakeTwilio) -> Callable[..., App]:
    """Build an app whose brand number is served by Twilio (the fake): ``twilio_app(twilio={...}, **config)``."""

    def make(*, twilio: dict[str, Any] | None = None, **overrides: Any) -> App:
        settings = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": fake_twilio.url,
                    **(twilio or {})}
        overrides.setdefault("numbers", [{"number": BRAND, "provider": "twilio", "skill": "support"}])
        return make_app(plugins={"twilio": settings}, **overrides)

    return make


@pytest.fixture
def serve(live_server: Callable[[App], LiveServer], fake_twilio: FakeTwilio) -> Callable[[App], LiveServer]:
    """Serve an app over real HTTP and route the fake's status callbacks to it."""

    def start(app: App) -> LiveServer:
        server = live_server(app)
        fake_twilio.deliver_to = server.url
        return server

    return start


@pytest.fixture
def app_defaults() -> dict[str, Any]:
    """These tests exercise sending mechanics, not consent.

    When the compliance plugin is installed too (the integration environment), its default rule -- a
    consumer must have texted before a conversational reply -- would refuse replies these tests send to
    numbers that never texted. Consent is the compliance plugin's own tests' subject.
    """
    return {"plugins": {"compliance": {"consent": {"conversational": "none"}}}}
