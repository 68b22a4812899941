"""/metrics counts what operators watch: messages by outcome, refusals, sends, the outbox."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from smsconnector import OutboundMessage, RetryableSendError, SendResult, hookimpl, outbound
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
