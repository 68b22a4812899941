"""A bulk send is one outbox row per recipient, queued in one transaction, and the sender delivers them."""

from __future__ import annotations

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER, eventually
from smsconnector.testing.entrypoints import alone, as_json, both_databases, delivered, record_consent

from .automation_support import AUTH, TOKEN

RECIPIENTS = ["+14155550123", "+14155550124", "+12125550100"]


def bulk(url: str, **fields: object) -> httpx.Response:
    body = {"from": BRAND_NUMBER, "campaign": "spring-sale", "message_class": "marketing", "reply_policy": "ignore",
            "text": "Spring sale: 20% off everything this weekend. Reply STOP to opt out.",
            "recipients": [{"to": RECIPIENTS[0]}, {"to": RECIPIENTS[1], "text": "Ana, your 30% code: ANA30"},
                           {"to": "(212) 555-0100", "context": {"segment": "vip"}}], **fields}
    return httpx.post(f"{url}/api/automation/messages", json=body, headers=AUTH)


@both_databases
def test_one_outbound_message_and_outbox_row_each_nothing_sent_around_the_outbox(make_app, live_server, db):
    app = make_app(sender={"enabled": False}, plugins={"disabled": alone("automation"), "automation": {"token": TOKEN}})
    server = live_server(app)

    response = bulk(server.url)

    assert response.status_code == 202
    body = response.json()
    assert (body["campaign"], body["message_class"], body["reply_policy"]) == ("spring-sale", "marketing", "ignore")
    assert [m["to"] for m in body["messages"]] == RECIPIENTS
    ids = [m["message_id"] for m in body["messages"]]
    assert db.rows("SELECT id, to_number, body, message_class, status FROM messages ORDER BY id") == [
        {"id": ids[0], "to_number": RECIPIENTS[0], "body": "Spring sale: 20% off everything this weekend. Reply STOP "
                                                           "to opt out.", "message_class": "marketing",
         "status": "queued"},
        {"id": ids[1], "to_number": RECIPIENTS[1], "body": "Ana, your 30% code: ANA30", "message_class": "marketing",
         "status": "queued"},
        {"id": ids[2], "to_number": RECIPIENTS[2], "body": "Spring sale: 20% off everything this weekend. Reply STOP "
                                                           "to opt out.", "message_class": "marketing",
         "status": "queued"}]
    assert sorted(r["message_id"] for r in db.rows("SELECT message_id FROM outbox")) == ids
    assert app.plugin("simulator").sent == []  # the sender (off here) is the only way out
    sends = db.rows("SELECT message_id, campaign, reply_policy, context FROM automation_sends ORDER BY id")
    assert [(s["message_id"], s["campaign"], s["reply_policy"], as_json(s["context"])) for s in sends] == [
        (ids[0], "spring-sale", "ignore", {}), (ids[1], "spring-sale", "ignore", {}),
        (ids[2], "spring-sale", "ignore", {"segment": "vip"})]


@pytest.mark.parametrize(("asked", "recorded"), [("transactional", "informational"),
                                                 ("informational", "informational"), ("marketing", "marketing")])
def test_the_message_class_reaches_the_outbox_for_compliance_to_judge(make_app, live_server, db, asked, recorded):
    app = make_app(sender={"enabled": False}, plugins={"disabled": alone("automation"), "automation": {"token": TOKEN}})
    server = live_server(app)

    assert bulk(server.url, message_class=asked).json()["message_class"] == recorded

    assert {r["message_class"] for r in db.rows("SELECT message_class FROM messages")} == {recorded}


@both_databases
def test_the_sender_delivers_every_text_of_the_batch(make_app, live_server, db):
    app = make_app(plugins={"disabled": alone("automation"), "automation": {"token": TOKEN}})
    server = live_server(app)
    for number in RECIPIENTS:
        server.call(lambda number=number: record_consent(app, number, BRAND_NUMBER, "informational"))

    response = bulk(server.url, message_class="informational", text="Our opening hours change on Monday.")

    assert response.status_code == 202
    sent = delivered(app, 3)
    assert sorted((s["to"], s["message_id"]) for s in sent) == sorted(
        (m["to"], m["message_id"]) for m in response.json()["messages"])
    assert eventually(lambda: db.count("outbox") == 0)
