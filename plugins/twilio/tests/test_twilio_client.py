"""The plugin's Twilio client and the environment: proxies named at start-up carry the sends, later changes don't."""

from __future__ import annotations

import asyncio
from base64 import b64encode
from collections.abc import Callable

from smsconnector_twilio.client import close_client, make_client
from smsconnector_twilio.settings import Settings

from .twilio_support import ACCOUNT_SID, AUTH_TOKEN, BRAND, CONSUMER


def send_one(fake_url: str, *, after_start_up: Callable[[], None] = lambda: None) -> str:
    """Make a client for the fake at ``fake_url`` as the plugin does at start-up, call ``after_start_up``, send
    one message; its sid."""

    async def run() -> str:
        client = make_client(Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=fake_url),
                             pool_size=1)
        try:
            after_start_up()
            return (await client.messages.create_async(to=CONSUMER, from_=BRAND, body="Hi")).sid
        finally:
            await close_client(client)

    return asyncio.run(run())


def test_credentials_in_the_proxy_url_go_to_the_proxy(recording_proxy, fake_twilio, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://nobody.invalid:1")  # the fake is plain HTTP: this one is not used
    monkeypatch.setenv("HTTP_PROXY", recording_proxy.url.replace("http://", "http://relay:s%40cret@"))

    sid = send_one(fake_twilio.url)

    assert recording_proxy.credentials == ["Basic " + b64encode(b"relay:s@cret").decode()]
    assert sid in fake_twilio.messages


def test_the_environment_is_read_when_the_client_is_made_not_on_each_call(recording_proxy, fake_twilio, monkeypatch):
    # set after start-up: the running client does not look again
    sid = send_one(fake_twilio.url, after_start_up=lambda: monkeypatch.setenv("HTTP_PROXY", recording_proxy.url))

    assert recording_proxy.seen == []
    assert sid in fake_twilio.messages
