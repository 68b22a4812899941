"""The consent ledger: append-only in the database itself, fed by keywords and by providers' own signals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from smsconnector import ConsentSignal, status
from smsconnector.errors import PermanentSendError
from smsconnector.messages import DeliveryStatus, OutboundMessage, StatusUpdate, utcnow
from smsconnector.plugins import hookimpl
from smsconnector.store.db import alembic_config
from smsconnector.store.models import Message
from smsconnector.testing import BRAND_NUMBER

from .compliance_helpers import CONSUMER, Pipeline

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@both_databases
def test_the_database_refuses_to_change_or_remove_a_ledger_row(make_app: Any, db: Any) -> None:
    app = make_app()
    pipe = Pipeline(app)

    async def main() -> None:
        await pipe.receive("STOP")
        await pipe.close()

    asyncio.run(main())
    [before] = db.rows("SELECT * FROM compliance_ledger")

    for statement in ("UPDATE compliance_ledger SET action = 'opt_in'", "DELETE FROM compliance_ledger"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE compliance_ledger")

    assert db.rows("SELECT * FROM compliance_ledger") == [before]


def test_the_plugin_migrates_as_its_own_branch_after_the_hosts(make_app: Any, db: Any) -> None:
    app = make_app()
    script = ScriptDirectory.from_config(alembic_config(app.hooks.migrations()))

    assert script.get_revision("c0001").branch_labels == {"compliance"}
    assert script.get_revision("c0001").dependencies == "0001"
    # Alembic records one row per branch head; the plugin's head stands for the host's revision it depends on.
    assert "c0001" in {r["version_num"] for r in db.rows("SELECT version_num FROM alembic_version")}
    assert db.count("compliance_ledger") == db.count("compliance_sends") == db.count("messages") == 0


def test_a_keyword_opt_out_keeps_the_evidence(make_app: Any, db: Any) -> None:
    app = make_app(plugins={"compliance": {"numbers": {BRAND_NUMBER: {"brand_name": "Acme"}}}})
    pipe = Pipeline(app)

    async def main() -> Message:
        stop = await pipe.receive("please stop texting me 🙏")
        await pipe.close()
        return stop

    stop = asyncio.run(main())
    [event] = db.rows("SELECT * FROM compliance_ledger")

    assert {k: event[k] for k in ("consumer_number", "brand_number", "scope", "action", "method", "tier", "matched",
                                  "raw_text", "language", "inbound_message_id", "confirmation", "recipient_zones",
                                  "recorded_by", "source", "consumer_action")} == {
        "consumer_number": CONSUMER, "brand_number": BRAND_NUMBER, "scope": f"number:{BRAND_NUMBER}",
        "action": "opt_out", "method": "phrase", "tier": 2, "matched": "stop texting me",
        "raw_text": "please stop texting me 🙏", "language": "en", "inbound_message_id": stop.id,
        "confirmation": "ours", "recipient_zones": "America/New_York", "recorded_by": "consumer",
        "source": "sms:simulator", "consumer_action": "texted 'please stop texting me 🙏'"}
    assert event["confirmation_text"].startswith("Acme: You are unsubscribed")


class RefusingProvider:
    """A provider that says the consumer opted out with it (Twilio's 21610)."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage) -> Any:
        """Refuse every message as opted out."""
        if provider != "carrier":
            return None
        self.calls += 1
        return self._refuse()

    async def _refuse(self) -> None:
        raise PermanentSendError("Attempt to send to unsubscribed recipient", code="21610", opted_out=True)


@both_databases
def test_a_provider_refusing_an_opted_out_consumer_is_recorded_and_later_sends_are_refused_before_it(
        make_app: Any, db: Any) -> None:
    carrier = RefusingProvider()
    app = make_app(numbers=[{"number": BRAND_NUMBER, "provider": "carrier"}], register=[("carrier", carrier)])
    pipe = Pipeline(app, provider="carrier")

    async def main() -> tuple[Message, Message]:
        await pipe.receive("Hi")
        first = await pipe.queue("Your order shipped")
        await pipe.drain()
        second = await pipe.queue("Did it arrive?")
        await pipe.drain()
        result = await pipe.message(first), await pipe.message(second)
        await pipe.close()
        return result

    first, second = asyncio.run(main())
    [event] = db.rows("SELECT * FROM compliance_ledger")

    assert (first.status, first.error_code) == ("failed", "21610")
    assert (event["action"], event["method"], event["source"], event["message_id"], event["recorded_by"]) == (
        "opt_out", "provider", "carrier:21610", first.id, "provider:carrier")
    assert (second.status, second.error_code) == ("refused", "opted_out")
    assert "as reported by the provider (carrier:21610)" in (second.error_message or "")
    assert carrier.calls == 1


def test_a_delivery_report_with_twilios_opt_out_code_is_recorded(make_app: Any, db: Any) -> None:
    app = make_app()

    async def main() -> None:
        now = utcnow()
        async with app.store.transaction() as session:
            session.add(Message(direction="outbound", provider="twilio", provider_message_id="SM1",
                                from_number=BRAND_NUMBER, to_number=CONSUMER, body="Hello", status="sent",
                                created_at=now, updated_at=now))
        for sid, code in (("SM1", "21610"), ("SM1", "30003")):
            async with app.store.transaction() as session:
                await status.apply(app, session, StatusUpdate("twilio", sid, DeliveryStatus.FAILED, error_code=code))
        await app.store.close()

    asyncio.run(main())

    assert [(e["action"], e["source"], e["recorded_by"]) for e in db.rows("SELECT * FROM compliance_ledger")] == [
        ("opt_out", "twilio:21610", "provider:twilio")]


def test_twilio_advanced_opt_out_keywords_are_recorded_without_a_second_reply(make_app: Any, db: Any) -> None:
    app = make_app()
    pipe = Pipeline(app, provider="twilio")

    async def main() -> list[Message]:
        await pipe.receive("Stop!", keyword="STOP")
        await pipe.receive("Start", keyword="START")
        await pipe.receive("HELP", keyword="HELP")
        out = await pipe.outbound()
        await pipe.close()
        return out

    replies = asyncio.run(main())
    events = db.rows("SELECT action, method, confirmation, source FROM compliance_ledger ORDER BY id")

    assert replies == []  # Twilio answered all three itself
    assert events == [
        {"action": "opt_out", "method": "provider", "confirmation": "provider",
         "source": "sms:twilio (twilio keyword STOP)"},
        {"action": "opt_in", "method": "provider", "confirmation": "provider",
         "source": "sms:twilio (twilio keyword START)"}]


@pytest.mark.parametrize(("text", "we_reply"), [
    ("STOP", False),  # Twilio's STOP filtering answered it
    ("cancel", False),
    ("Stop.", True),  # not the bare keyword: Twilio neither blocks nor answers it (unverified), so we do
    ("please stop texting me", True),
    ("ARRET", True),  # not in Twilio's default list
])
def test_keywords_the_provider_answers_itself_get_no_reply_from_us(
        make_app: Any, db: Any, text: str, we_reply: bool) -> None:
    app = make_app()
    pipe = Pipeline(app, provider="twilio")

    async def main() -> list[Message]:
        await pipe.receive(text)
        out = await pipe.outbound()
        await pipe.close()
        return out

    replies = asyncio.run(main())
    [event] = db.rows("SELECT action, confirmation FROM compliance_ledger")

    assert (len(replies), event) == (int(we_reply), {"action": "opt_out",
                                                     "confirmation": "ours" if we_reply else "provider"})


def test_a_number_can_say_its_provider_does_not_handle_keywords(make_app: Any) -> None:
    app = make_app(plugins={"compliance": {"numbers": {BRAND_NUMBER: {"provider_handles_keywords": False}}}})
    pipe = Pipeline(app, provider="twilio")

    async def main() -> list[Message]:
        await pipe.receive("STOP")
        out = await pipe.outbound()
        await pipe.close()
        return out

    assert [m.message_class for m in asyncio.run(main())] == ["compliance"]


def test_consent_another_plugin_obtained_is_recorded_with_its_evidence(make_app: Any, db: Any) -> None:
    app = make_app()
    signal = ConsentSignal(consumer_number=CONSUMER, brand_number=BRAND_NUMBER, action="consent",
                           consent_class="informational", method="web_form", source="https://example.com/signup",
                           consumer_action="ticked the SMS updates box", disclosure="Msg & data rates may apply.",
                           recorded_by="webforms")

    async def report() -> None:
        async with app.store.transaction() as session:
            await app.hooks.consent_signal(signal, session)
        await app.store.close()

    asyncio.run(report())

    [event] = db.rows("SELECT * FROM compliance_ledger")
    assert (event["action"], event["consent_class"], event["method"], event["source"], event["consumer_action"],
            event["disclosure_text"], event["recorded_by"]) == (
        "consent", "informational", "web_form", "https://example.com/signup", "ticked the SMS updates box",
        "Msg & data rates may apply.", "webforms")
    assert event["disclosure_hash"]  # the text's hash is kept beside it
