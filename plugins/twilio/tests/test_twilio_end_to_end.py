"""A consumer texts the brand through Twilio, an agent replies, Twilio reports delivery: all over real HTTP."""

from __future__ import annotations

import logging

import pytest

from smsconnector.testing import eventually

from .twilio_support import AUTH_TOKEN, BRAND, CONSUMER, INBOUND, payload, post_signed, queue_reply

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
REPLY = "It ships today, tracking to follow."


def status_of(db, message_id: int) -> str:
    return str(db.scalar("SELECT status FROM messages WHERE id = :id", id=message_id))


def sid_of(db, message_id: int) -> str | None:
    return db.scalar("SELECT provider_message_id FROM messages WHERE id = :id", id=message_id)


@both_databases
@pytest.mark.parametrize("order", [("sent", "delivered"), ("delivered", "sent")], ids=["in order", "out of order"])
def test_inbound_routed_reply_sent_once_and_delivered(order, twilio_app, serve, fake_twilio, db, caplog):
    app = twilio_app()
    server = serve(app)
    caplog.set_level(logging.INFO)  # the default; at DEBUG the database driver logs SQL parameters

    inbound = post_signed(server.url, INBOUND, payload("sms_with_geo"))

    assert inbound.status_code == 200
    [conversation] = db.rows("SELECT * FROM conversations")
    assert (conversation["consumer_number"], conversation["brand_number"], conversation["status"]) == (
        CONSUMER, BRAND, "queued")

    reply_id = queue_reply(server, app, text=REPLY)

    sid = eventually(lambda: sid_of(db, reply_id))  # Twilio accepted it, and the host recorded its sid
    [sent] = fake_twilio.sent()
    assert (sent["sid"], sent["to"], sent["from"], sent["body"]) == (sid, CONSUMER, BRAND, REPLY)
    assert status_of(db, reply_id) == "sending"

    assert fake_twilio.report(sid, *order) == [200, 200]

    assert status_of(db, reply_id) == "delivered"
    assert len(fake_twilio.message_requests()) == 1  # sent once
    assert db.count("outbox") == 0
    assert AUTH_TOKEN not in caplog.text and REPLY not in caplog.text  # no secrets or bodies in the logs


def test_the_fake_reports_on_its_own_and_out_of_order(twilio_app, serve, fake_twilio, db):
    fake_twilio.auto_report = ("delivered", "sent")
    # Generously after the host has recorded the SID, as Twilio calls back after its answer (see the README).
    fake_twilio.report_delay = 0.5
    app = twilio_app()
    server = serve(app)

    reply_id = queue_reply(server, app)

    eventually(lambda: len(fake_twilio.callbacks) == 2)
    assert [(c.status, c.answer) for c in fake_twilio.callbacks] == [("delivered", 200), ("sent", 200)]
    assert status_of(db, reply_id) == "delivered"


def test_an_undelivered_report_records_twilios_error_code_for_the_agent(twilio_app, serve, fake_twilio, db):
    app = twilio_app()
    server = serve(app)

    reply_id = queue_reply(server, app)
    sid = eventually(lambda: sid_of(db, reply_id))
    fake_twilio.report(sid, "sent", "undelivered", error_code=30003)

    [row] = db.rows("SELECT status, error_code FROM messages WHERE id = :id", id=reply_id)
    assert (row["status"], row["error_code"]) == ("undelivered", "30003")
