"""Webhook refusals: each answers a clear JSON error and leaves the database exactly as it was."""

from __future__ import annotations

import json

import httpx
import pytest

from smsconnector import InboundMessage, Received, WebhookRequest, hookimpl
from smsconnector.testing import BRAND_NUMBER, eventually

GOOD = {"id": "sim-1", "from": "+14155550123", "to": BRAND_NUMBER, "text": "hello"}


@pytest.fixture
def client(make_app, live_server):
    server = live_server(make_app(max_body_bytes=2048, plugins={"simulator": {"token": "s3cret"}}))
    with httpx.Client(base_url=server.url, headers={"authorization": "Bearer s3cret"}) as client:
        yield client


CASES = [
    pytest.param("/webhooks/nosuch/inbound", {"json": GOOD}, {}, 404, "unknown_provider", id="unknown provider"),
    pytest.param("/webhooks/simulator/inbound", {"content": b"{" * 4096}, {}, 413, "too_large", id="too large"),
    pytest.param("/webhooks/simulator/inbound", {"content": b"{not json"}, {}, 400, "malformed", id="not JSON"),
    pytest.param("/webhooks/simulator/inbound", {"json": []}, {}, 400, "malformed", id="empty list"),
    pytest.param("/webhooks/simulator/inbound", {"json": {**GOOD, "from": "not-a-number"}}, {}, 400, "malformed",
                 id="bad number"),
    pytest.param("/webhooks/simulator/inbound", {"json": {k: v for k, v in GOOD.items() if k != "id"}}, {}, 400,
                 "malformed", id="missing id"),
    pytest.param("/webhooks/simulator/inbound", {"json": [GOOD, {**GOOD, "id": "sim-2", "to": "+1 bad"}]}, {}, 400,
                 "malformed", id="one bad event in a batch stores none"),
    pytest.param("/webhooks/simulator/inbound", {"json": GOOD}, {"authorization": "Bearer wrong"}, 401,
                 "unauthenticated", id="wrong token"),
    pytest.param("/webhooks/simulator/status", {"json": {"id": "SIM1", "status": "exploded"}}, {}, 400, "malformed",
                 id="unknown status"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "code"), CASES)
def test_refused_webhook_answers_json_error_and_stores_nothing(client, db, path, body, headers, status, code):
    before = db.snapshot()

    response = client.post(path, headers=headers, **body)

    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert db.snapshot() == before


def test_body_over_the_limit_is_refused_while_streaming_without_content_length(make_app, live_server, db):
    server = live_server(make_app(max_body_bytes=2048))
    before = db.snapshot()

    def chunks():
        for _ in range(10):
            yield b"x" * 1024

    response = httpx.post(f"{server.url}/webhooks/simulator/inbound", content=chunks())

    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert db.snapshot() == before


def test_refusal_log_names_the_problem_but_not_the_body(client, caplog):
    secret_text = "my card number is 4111 1111 1111 1111"

    client.post("/webhooks/simulator/inbound", json={**GOOD, "from": "bogus", "text": secret_text})

    assert "400" in caplog.text
    assert secret_text not in caplog.text


def test_health(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("kind", ["inbound", "status"])
def test_a_webhook_in_a_method_its_provider_does_not_use_is_refused_naming_those_it_does(client, db, method, kind):
    before = db.snapshot()

    response = client.request(method, f"/webhooks/simulator/{kind}", params=GOOD)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert db.snapshot() == before


class QueryProvider:
    """A provider whose webhooks come as GET, the message in the query string (Vonage's default)."""

    def __init__(self, methods: object = ("get",)) -> None:
        self.methods = methods

    @hookimpl
    def smsconnector_webhook_methods(self, provider: str):
        return self.methods if provider == "query" else None

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest):
        if provider != "query":
            return None
        return Received(events=[(request.method, dict(request.query))])

    @hookimpl
    def smsconnector_normalize(self, provider: str, event):
        if provider != "query":
            return None
        method, params = event
        return InboundMessage(provider="query", provider_message_id=params["id"], from_number=params["from"],
                              to_number=params["to"], text=params["text"], details={"method": method})


def test_a_provider_that_declares_get_receives_its_webhooks_from_the_query_string_once(make_app, live_server, db):
    server = live_server(make_app(register=[("query", QueryProvider())]))
    url = f"{server.url}/webhooks/query/inbound"

    first, retry = httpx.get(url, params=GOOD), httpx.get(url, params=GOOD)

    assert (first.status_code, retry.status_code) == (200, 200)
    assert eventually(lambda: db.count("messages") == 1)
    [row] = db.rows("SELECT provider_message_id, body, details FROM messages")
    assert (row["provider_message_id"], row["body"]) == ("sim-1", "hello")
    assert json.loads(row["details"]) == {"method": "GET"}  # upper-cased, as the declaration need not be
    # POST is no longer among its methods, so it is refused like any other.
    response = httpx.post(url, json=GOOD)
    assert (response.status_code, response.headers["allow"]) == (405, "GET")


@pytest.mark.parametrize("declared", ["GET", [], [1]], ids=["a bare string", "none at all", "not a name"])
def test_a_plugin_declaring_something_other_than_methods_is_named(make_app, live_server, db, declared):
    server = live_server(make_app(register=[("query", QueryProvider(declared))]))
    before = db.snapshot()

    response = httpx.get(f"{server.url}/webhooks/query/inbound", params=GOOD)

    assert response.status_code == 500
    assert "plugin 'query': smsconnector_webhook_methods must name HTTP methods" in response.json()["detail"]
    assert db.snapshot() == before


def test_401_names_the_scheme_it_wants(client):
    response = client.post("/webhooks/simulator/inbound", json=GOOD, headers={"authorization": "Bearer wrong"})

    assert response.headers["www-authenticate"] == 'Bearer realm="smsconnector"'


def test_a_brand_short_code_is_kept_as_given_and_the_consumer_in_e164(client, db):
    response = client.post("/webhooks/simulator/inbound", json={**GOOD, "to": "222111"})

    assert response.status_code == 200
    assert db.rows("SELECT from_number, to_number FROM messages") == [
        {"from_number": "+14155550123", "to_number": "222111"}]
