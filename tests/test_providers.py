"""The base of provider plugins: settings read and checked at start-up, a client from start-up to shut-down,
webhook methods answered for its own provider alone."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, ConfigDict, Field

from smsconnector.errors import PluginConfigError
from smsconnector.providers import Provider


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = "key"
    timeout_seconds: float = Field(10.0, gt=0)


class Client:
    """Stands for a pooled HTTP client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class Acme(Provider[Settings, Client]):
    name = "acme"
    settings_model = Settings
    webhook_methods = frozenset({"GET", "POST"})

    def open_client(self, settings: Settings) -> Client:
        return Client(settings)


def test_a_wrong_setting_stops_start_up_naming_its_key(make_app):
    with pytest.raises(PluginConfigError) as raised:
        make_app(register=[("acme", Acme())], plugins={"acme": {"timeout_seconds": 0}})

    assert (raised.value.plugin, raised.value.key) == ("acme", "plugins.acme.timeout_seconds")


def test_the_settings_are_read_then_configure_runs(make_app):
    class Configured(Acme):
        def configure(self, app):
            self.seen = self.settings

    plugin = Configured()
    make_app(register=[("acme", plugin)], plugins={"acme": {"api_key": "secret"}})

    assert plugin.seen == Settings(api_key="secret")


def test_the_client_is_opened_at_start_up_and_closed_at_shut_down(make_app):
    plugin = Acme()
    app = make_app(register=[("acme", plugin)], plugins={"acme": {"api_key": "secret"}})
    assert plugin.client is None

    asyncio.run(app.hooks.startup())
    client = plugin.client
    assert client is not None and client.settings.api_key == "secret" and not client.closed

    asyncio.run(app.hooks.shutdown())
    assert client.closed and plugin.client is None


def test_a_provider_without_a_client_opens_none(make_app):
    class Clientless(Provider[Settings, Client]):
        name = "clientless"
        settings_model = Settings

    plugin = Clientless()
    app = make_app(register=[("clientless", plugin)])

    asyncio.run(app.hooks.startup())
    assert plugin.client is None
    asyncio.run(app.hooks.shutdown())


def test_webhook_methods_are_answered_for_its_own_provider_only(make_app):
    class PostOnly(Provider[Settings, Client]):
        name = "postonly"
        settings_model = Settings

    app = make_app(register=[("acme", Acme()), ("postonly", PostOnly())])

    assert app.hooks.webhook_methods("acme") == {"GET", "POST"}
    assert app.hooks.webhook_methods("postonly") == {"POST"}
    assert app.hooks.webhook_methods("simulator") == {"POST"}
