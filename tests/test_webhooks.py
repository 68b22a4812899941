"""Webhook refusals: each answers a clear JSON error and leaves the database exactly as it was."""

from __future__ import annotations

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER

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


def test_get_on_a_webhook_is_not_allowed(client, db):
    before = db.snapshot()

    assert client.get("/webhooks/simulator/inbound").status_code == 405
    assert db.snapshot() == before


def test_401_names_the_scheme_it_wants(client):
    response = client.post("/webhooks/simulator/inbound", json=GOOD, headers={"authorization": "Bearer wrong"})

    assert response.headers["www-authenticate"] == 'Bearer realm="smsconnector"'


def test_a_brand_short_code_is_kept_as_given_and_the_consumer_in_e164(client, db):
    response = client.post("/webhooks/simulator/inbound", json={**GOOD, "to": "222111"})

    assert response.status_code == 200
    assert db.rows("SELECT from_number, to_number FROM messages") == [
        {"from_number": "+14155550123", "to_number": "222111"}]
