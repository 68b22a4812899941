"""With the compliance plugin installed, the caller's choice to be texted is recorded in its consent ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER

from .ivr_support import AUTH, CALLER, TOKEN, alone, installed


class Ledger:
    """Stands in for the compliance plugin: the one method the IVR plugin calls on it."""

    def __init__(self) -> None:
        self.facts: list[dict[str, Any]] = []

    async def record(self, session: Any, **fact: Any) -> None:
        assert session.in_transaction()  # the fact commits with the offer, or not at all
        self.facts.append(fact)


@pytest.mark.skipif("compliance" in installed(), reason="the real compliance plugin is installed: the end-to-end "
                                                        "tests go through its ledger and send gate instead")
def test_the_keypress_is_recorded_as_conversational_consent(make_app, live_server):
    ledger = Ledger()
    server = live_server(make_app(register=[("compliance", ledger)],
                                  plugins={"disabled": alone("ivr"), "ivr": {"token": TOKEN}}))

    response = httpx.post(f"{server.url}/api/ivr/deflections", headers=AUTH, json={
        "caller": CALLER, "brand_number": BRAND_NUMBER, "skill": "support", "call_id": "CA-9",
        "menu_path": ["orders", "text me"]})

    assert response.status_code == 202
    assert ledger.facts == [{
        "consumer": CALLER, "brand_number": BRAND_NUMBER, "action": "consent", "consent_class": "conversational",
        "method": "ivr", "source": "IVR call CA-9", "consumer_action": "chose to be texted while on hold (menu orders "
                                                                      "> text me)", "recorded_by": "ivr"}]

