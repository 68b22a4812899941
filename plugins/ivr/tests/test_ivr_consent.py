"""The caller's choice to be texted is reported as a consent signal, which the consent ledger records."""

from __future__ import annotations

from typing import Any

import httpx

from smsconnector import ConsentSignal, hookimpl
from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import alone

from .ivr_support import AUTH, CALLER, TOKEN


class Ledger:
    """Listens on the consent-signal hook, as the compliance plugin does."""

    def __init__(self) -> None:
        self.facts: list[ConsentSignal] = []

    @hookimpl
    async def smsconnector_consent_signal(self, signal: ConsentSignal, session: Any) -> None:
        assert session.in_transaction()  # the fact commits with the offer, or not at all
        self.facts.append(signal)


def test_the_keypress_is_reported_as_conversational_consent(make_app, live_server):
    ledger = Ledger()
    server = live_server(make_app(register=[("ledger", ledger)],
                                  plugins={"disabled": alone("ivr"), "ivr": {"token": TOKEN}}))

    response = httpx.post(f"{server.url}/api/ivr/deflections", headers=AUTH, json={
        "caller": CALLER, "brand_number": BRAND_NUMBER, "skill": "support", "call_id": "CA-9",
        "menu_path": ["orders", "text me"]})

    assert response.status_code == 202
    assert ledger.facts == [ConsentSignal(
        consumer_number=CALLER, brand_number=BRAND_NUMBER, action="consent", consent_class="conversational",
        method="ivr", source="IVR call CA-9",
        consumer_action="chose to be texted while on hold (menu orders > text me)", recorded_by="ivr")]

