"""The plugin as the host sees it: found through its entry point, configured or idle."""

from __future__ import annotations

import pytest

from smsconnector.errors import PluginError
from smsconnector.plugins import load_plugins

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN


def test_the_plugin_is_found_through_its_entry_point():
    _, infos = load_plugins()

    [twilio] = [i for i in infos if i.name == "twilio"]
    assert (twilio.distribution, twilio.version, twilio.enabled) == ("smsconnector-twilio", "0.1.0", True)
    assert set(twilio.hooks) == {"smsconnector_configure", "smsconnector_startup", "smsconnector_shutdown",
                                 "smsconnector_receive", "smsconnector_normalize", "smsconnector_segment_policy",
                                 "smsconnector_send", "smsconnector_find_sent", "smsconnector_webhook_methods"}


def test_disabled_in_configuration_it_is_not_registered(make_app):
    app = make_app(plugins={"disabled": ["twilio"]})

    assert app.plugin("twilio") is None


def test_installed_without_a_section_it_stays_idle(make_app):
    app = make_app()

    assert app.plugin("twilio").settings is None


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ({"account_sid": "AC123", "auth_token": AUTH_TOKEN}, "plugins.twilio.account_sid", "should match pattern"),
        ({"account_sid": ACCOUNT_SID}, "plugins.twilio", "set auth_token"),
        ({"account_sid": ACCOUNT_SID, "api_key": "SK" + "ab" * 16, "api_secret": "s"}, "plugins.twilio",
         "set auth_token or shared_key"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_key": "SK" + "ab" * 16}, "plugins.twilio",
         "api_key and api_secret go together"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "messaging_service_sid": "MG1"},
         "plugins.twilio.messaging_service_sid", "should match pattern"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "numbers": {"not a number": {}}},
         "plugins.twilio.numbers", "not a phone number"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": "localhost:8080"},
         "plugins.twilio.api_base_url", "must start with http"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "auth_tokn": "typo"}, "plugins.twilio.auth_tokn",
         "Extra inputs are not permitted"),
    ],
)
def test_a_wrong_section_stops_start_up_naming_the_key(section, key, reason, make_app):
    with pytest.raises(PluginError) as raised:
        make_app(plugins={"twilio": section})

    assert raised.value.plugin == "twilio"
    assert f"configuration {key}" in str(raised.value)
    assert reason in str(raised.value)


def test_the_client_lives_from_start_up_to_shut_down(twilio_app, live_server):
    app = twilio_app()
    plugin = app.plugin("twilio")
    assert plugin.client is None

    server = live_server(app)
    client = plugin.client
    assert client is not None and client.account_sid == ACCOUNT_SID
    server.stop()

    assert plugin.client is None
