"""/metrics counts what operators watch: messages by outcome, refusals, sends, the outbox."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from smsconnector import outbound
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
