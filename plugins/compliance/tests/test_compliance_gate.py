"""The send gate through the real sender: consent per message class, opt-out scope, the one confirmation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsconnector.messages import OutboundMessage
from smsconnector.sender import decide
from smsconnector.store.models import Message
from smsconnector.testing import BRAND_NUMBER

from .compliance_helpers import CONSUMER, Pipeline, Spy

OTHER_NUMBER = "+15555550111"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


def consent(pipe: Pipeline, consent_class: str, **fields: Any) -> Any:
    async def record() -> None:
        async with pipe.app.store.transaction() as session:
            await pipe.compliance.record(session, consumer=fields.pop("consumer", CONSUMER),
                                         brand_number=fields.pop("brand_number", BRAND_NUMBER), action="consent",
                                         consent_class=consent_class, method="web_form", source="acme.example/join",
                                         consumer_action="ticked the box", disclosure_text="Acme texts, v3",
                                         recorded_by="admin", **fields)
    return record()


async def send(pipe: Pipeline, text: str, **kwargs: Any) -> Message:
    message_id = await pipe.queue(text, **kwargs)
    await pipe.drain()
    return await pipe.message(message_id)


def test_a_conversational_message_needs_the_consumer_to_have_texted_first(make_app: Any) -> None:
    pipe = Pipeline(make_app())

    async def main() -> tuple[Message, Message]:
        cold = await send(pipe, "Hi from Acme!")
        await pipe.receive("Hi, is my order ready?")
        reply = await send(pipe, "Yes, it is.")
        await pipe.close()
        return cold, reply

    cold, reply = asyncio.run(main())

    assert (cold.status, cold.error_code) == ("refused", "no_consent")
    assert cold.error_message == (f"{CONSUMER} has not texted {BRAND_NUMBER} in the last 168 hours and no consent is "
                                  "recorded: a conversational message needs the consumer to have started the exchange")
    assert reply.status in ("sent", "delivered")


def test_the_exchange_ends_after_its_window(make_app: Any) -> None:
    pipe = Pipeline(make_app(plugins={"compliance": {"consent": {"exchange_hours": 24}}}))

    async def main() -> Message:
        await pipe.receive("Hi")
        pipe.at(datetime.now(UTC) + timedelta(hours=25))
        late = await send(pipe, "Sorry for the delay!")
        await pipe.close()
        return late

    late = asyncio.run(main())

    assert (late.status, late.error_code) == ("refused", "no_consent")
    assert "in the last 24 hours" in (late.error_message or "")


def test_an_opt_in_outside_sms_does_not_restart_an_exchange_the_opt_out_ended(make_app: Any) -> None:
    pipe = Pipeline(make_app())

    async def main() -> Message:
        await pipe.receive("Hi")
        await pipe.receive("STOP")
        async with pipe.app.store.transaction() as session:
            await pipe.compliance.record(session, consumer=CONSUMER, brand_number=BRAND_NUMBER, action="opt_in",
                                         method="voice", source="call 77", recorded_by="admin")
        message = await send(pipe, "Welcome back")
        await pipe.close()
        return message

    message = asyncio.run(main())

    assert (message.status, message.error_code) == ("refused", "no_consent")


@pytest.mark.parametrize(("recorded", "informational", "marketing"), [
    (None, "no_consent", "no_consent"),
    ("conversational", "no_consent", "no_consent"),
    ("informational", None, "no_consent"),
    ("marketing", None, None),  # written consent for marketing is also express consent
])
def test_each_class_needs_its_consent(make_app: Any, recorded: str | None, informational: str | None,
                                      marketing: str | None) -> None:
    # 16:00 UTC is noon in Miami: inside every window.
    pipe = Pipeline(make_app())
    pipe.at(datetime(2026, 7, 15, 16, 0, tzinfo=UTC))

    async def main() -> tuple[Message, Message]:
        if recorded:
            await consent(pipe, recorded)
        results = (await send(pipe, "Your appointment is tomorrow", message_class="informational"),
                   await send(pipe, "20% off", message_class="marketing"))
        await pipe.close()
        return results

    info, promo = asyncio.run(main())

    assert (info.error_code, promo.error_code) == (informational, marketing)


def test_consent_levels_are_configurable(make_app: Any) -> None:
    pipe = Pipeline(make_app(plugins={"compliance": {"consent": {"conversational": "none",
                                                                 "informational": "exchange"}}}))

    async def main() -> tuple[Message, Message, Message]:
        cold = await send(pipe, "Hello")
        informational = await send(pipe, "Reminder", message_class="informational")
        await pipe.receive("ok")
        after_text = await send(pipe, "Reminder", message_class="informational")
        await pipe.close()
        return cold, informational, after_text

    cold, informational, after_text = asyncio.run(main())

    assert (cold.error_code, informational.error_code, after_text.error_code) == (None, "no_consent", None)


def test_an_opt_out_revokes_consent_and_start_does_not_bring_it_back_by_default(make_app: Any) -> None:
    pipe = Pipeline(make_app())
    pipe.at(datetime(2026, 7, 15, 16, 0, tzinfo=UTC))

    async def main() -> Message:
        await consent(pipe, "marketing")
        await pipe.receive("STOP")
        await pipe.receive("START")
        promo = await send(pipe, "20% off", message_class="marketing")
        await pipe.close()
        return promo

    assert asyncio.run(main()).error_code == "no_consent"


def test_policy_opt_in_restores_consent(make_app: Any) -> None:
    pipe = Pipeline(make_app(plugins={"compliance": {"opt_in_restores_consent": True}}))
    pipe.at(datetime(2026, 7, 15, 16, 0, tzinfo=UTC))

    async def main() -> Message:
        await consent(pipe, "marketing")
        await pipe.receive("STOP")
        await pipe.receive("START")
        promo = await send(pipe, "20% off", message_class="marketing")
        await pipe.close()
        return promo

    promo = asyncio.run(main())
    assert (promo.status, promo.error_code) == ("sent", None) or promo.status == "delivered"


def brand_numbers(scope: str) -> dict[str, Any]:
    return {"numbers": [{"number": BRAND_NUMBER, "provider": "simulator", "brand": "acme"},
                        {"number": OTHER_NUMBER, "provider": "simulator", "brand": "acme"}],
            "plugins": {"compliance": {"opt_out_scope": scope}}}


@both_databases
def test_an_opt_out_covers_every_number_of_the_brand(make_app: Any, db: Any) -> None:
    pipe = Pipeline(make_app(**brand_numbers("brand")))

    async def main() -> Message:
        await pipe.receive("Hi", to=OTHER_NUMBER)
        await pipe.receive("STOP", to=BRAND_NUMBER)
        other = await send(pipe, "Hello from our other line", frm=OTHER_NUMBER)
        await pipe.close()
        return other

    other = asyncio.run(main())

    assert (other.status, other.error_code) == ("refused", "opted_out")
    assert "opted out of messages from acme" in (other.error_message or "")
    assert db.rows("SELECT scope FROM compliance_ledger WHERE action = 'opt_out'") == [{"scope": "brand:acme"}]


def test_policy_opt_out_scope_number_leaves_the_brands_other_numbers(make_app: Any) -> None:
    pipe = Pipeline(make_app(**brand_numbers("number")))

    async def main() -> Message:
        await pipe.receive("Hi", to=OTHER_NUMBER)
        await pipe.receive("STOP", to=BRAND_NUMBER)
        other = await send(pipe, "Hello from our other line", frm=OTHER_NUMBER)
        await pipe.close()
        return other

    assert asyncio.run(main()).error_code is None


@both_databases
def test_only_one_confirmation_leaves_even_when_its_text_is_queued_twice(make_app: Any, db: Any) -> None:
    pipe = Pipeline(make_app())

    async def main() -> list[Message]:
        await pipe.receive("STOP")
        [confirmation] = await pipe.outbound()
        await send(pipe, confirmation.body, message_class="compliance")  # both are due now, in either order
        out = await pipe.outbound()
        await pipe.close()
        return out

    out = asyncio.run(main())
    [sent] = [m for m in out if m.status != "refused"]
    [copy] = [m for m in out if m.status == "refused"]

    assert copy.error_code == "opted_out"
    assert f"one opt-out confirmation was already sent (message {sent.id})" in (copy.error_message or "")
    [claim] = db.rows("SELECT message_id FROM compliance_ledger WHERE action = 'confirmation'")
    assert claim["message_id"] == sent.id


def test_a_compliance_message_that_is_not_the_confirmation_is_refused_to_an_opted_out_consumer(make_app: Any) -> None:
    pipe = Pipeline(make_app())

    async def main() -> Message:
        await pipe.receive("STOP")
        notice = await send(pipe, "Important: our terms changed", message_class="compliance")
        await pipe.close()
        return notice

    assert asyncio.run(main()).error_code == "opted_out"


def test_the_gate_rechecks_the_length_limit(make_app: Any) -> None:
    app = make_app()
    message = OutboundMessage(id=1, provider="simulator", from_number=BRAND_NUMBER, to_number=CONSUMER,
                              text="x" * 1601)

    async def main() -> Any:
        async with app.store.transaction() as session:
            verdict = decide(await app.hooks.check_outbound(message, session))
        await app.store.close()
        return verdict

    verdict = asyncio.run(main())

    assert (verdict.action, verdict.code) == ("refuse", "too_long")
    assert verdict.reason == "message is 1601 characters; the limit is 1600 characters"


def test_marketing_outside_quiet_hours_is_deferred_by_the_sender_not_dropped(make_app: Any, db: Any) -> None:
    pipe = Pipeline(make_app())
    # 21:00 in Miami; a year ahead, so that the sender, which runs on the real clock, sees the row as not yet due.
    evening = datetime(2027, 7, 16, 1, 0, tzinfo=UTC)
    pipe.at(evening)

    async def main() -> Message:
        await consent(pipe, "marketing")
        message_id = await pipe.queue("20% off", message_class="marketing")
        await pipe.drain()  # the deferred row is not due: nothing left to do now
        message = await pipe.message(message_id)
        await pipe.close()
        return message

    message = asyncio.run(main())
    [row] = db.rows("SELECT due_at FROM outbox")

    assert message.status == "deferred" and message.error_message
    assert "deferred to 2027-07-16 12:00 UTC (2027-07-16 08:00 EDT)" in message.error_message
    assert str(row["due_at"]).startswith("2027-07-16 12:00:00")


def test_the_provider_is_told_how_long_it_may_hold_a_marketing_message(make_app: Any) -> None:
    spy = Spy()
    pipe = Pipeline(make_app(numbers=[{"number": BRAND_NUMBER, "provider": "spy"}], register=[("spy", spy)]),
                    provider="spy")
    pipe.at(datetime(2026, 7, 15, 23, 30, tzinfo=UTC))  # 19:30 in Miami: Florida's window closes at 20:00

    async def main() -> None:
        await consent(pipe, "marketing")
        await pipe.receive("Hi")
        await pipe.queue("20% off tonight", message_class="marketing")
        await pipe.queue("Your table is ready")
        await pipe.drain()
        await pipe.close()

    asyncio.run(main())

    assert [(m.message_class, m.validity_seconds) for m, _ in spy.sent] == [("marketing", 1800),
                                                                           ("conversational", None)]
