"""/metrics counts what operators watch: messages by outcome, refusals, sends, the outbox."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smsconnector import OutboundMessage, RetryableSendError, SendResult, hookimpl, outbound
from smsconnector.metrics import Metrics, serve_exposition
from smsconnector.testing import BRAND_NUMBER, eventually


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_outcomes_refusals_and_sends(make_app, live_server):
    server = live_server(make_app())
    text = {"id": "m1", "from": "+14155550123", "to": BRAND_NUMBER, "text": "secret words"}
    for _ in range(2):
        httpx.post(f"{server.url}/webhooks/simulator/inbound", json=text)
    httpx.post(f"{server.url}/webhooks/simulator/inbound", content=b"{oops")
    httpx.post(f"{server.url}/webhooks/nosuch/inbound", json=text)

    found = samples(server.url)

    assert found[("smsconnector_inbound_messages_total", (("outcome", "stored"), ("provider", "simulator")))] == 1
    assert found[("smsconnector_inbound_messages_total", (("outcome", "duplicate"), ("provider", "simulator")))] == 1
    rejected = (("code", "malformed"), ("path", "/webhooks/{provider}/inbound"))
    assert found[("smsconnector_requests_rejected_total", rejected)] == 1
    assert found[("smsconnector_outbox_depth", ())] == 0
    assert "secret words" not in httpx.get(f"{server.url}/metrics").text
    assert "+14155550123" not in httpx.get(f"{server.url}/metrics").text


TOKEN = "scrape-token-for-the-metrics-test"


def test_with_a_token_metrics_are_served_only_to_its_bearer_and_the_token_is_never_logged(make_app, live_server,
                                                                                        caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(metrics={"token": TOKEN})
    server = live_server(app)

    without = httpx.get(f"{server.url}/metrics")
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    bearing = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert (without.status_code, wrong.status_code, bearing.status_code) == (401, 401, 200)
    assert without.headers["www-authenticate"] == 'Bearer realm="smsconnector"'
    assert "smsconnector_outbox_depth" in bearing.text and "smsconnector_" not in without.text + wrong.text
    assert "GET /metrics refused with 401" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in repr(app.config)


def test_a_workers_metrics_ask_for_the_token_too():
    server = serve_exposition(Metrics().registry, "127.0.0.1", 0, token=TOKEN)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        without = httpx.get(url)
        bearing = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        server.shutdown()
        server.server_close()

    assert (without.status_code, bearing.status_code) == (401, 200)
    assert "smsconnector_outbox_depth" in bearing.text and "smsconnector_" not in without.text


def test_sends_are_counted_by_result(make_app, live_server):
    app = make_app()
    server = live_server(app)


    async def queue() -> None:
        async with app.store.transaction() as session:
            await outbound.queue(session, provider="simulator", from_number=BRAND_NUMBER, to_number="+14155550123",
                                 text="hello")

    server.call(queue)
    eventually(lambda: samples(server.url).get(
        ("smsconnector_sends_total", (("provider", "simulator"), ("result", "sent")))) == 1)


class DownProvider:
    """A provider that answers every send with a retryable 503 while ``down``."""

    def __init__(self) -> None:
        self.down = True

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage):
        return self._send(message) if provider == "down" else None

    async def _send(self, message: OutboundMessage) -> SendResult:
        if self.down:
            raise RetryableSendError("service unavailable", code="503")
        return SendResult(provider_message_id=f"down-{message.id}")


RETRYING = ("smsconnector_outbox_retrying", (("provider", "down"),))
OLDEST = ("smsconnector_outbox_retrying_oldest_seconds", (("provider", "down"),))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_messages_waiting_for_a_retry_and_the_oldest_ones_age_are_gauged_by_provider(make_app, live_server, db):
    provider = DownProvider()
    app = make_app(register=[("down", provider)], sender={"backoff_base_seconds": 0.05, "backoff_max_seconds": 0.1})
    server = live_server(app)

    async def queue() -> None:
        async with app.store.transaction() as session:
            for n in range(3):
                await outbound.queue(session, provider="down", from_number=BRAND_NUMBER,
                                     to_number=f"+1415555{n:04d}", text="hello")

    server.call(queue)

    assert eventually(lambda: samples(server.url).get(RETRYING) == 3)
    time.sleep(0.3)
    found = samples(server.url)
    assert found[OLDEST] >= 0.3 and found[("smsconnector_outbox_depth", ())] == 3
    provider.down = False
    assert eventually(lambda: db.count("outbox") == 0)
    assert (samples(server.url)[RETRYING], samples(server.url)[OLDEST]) == (0, 0)
