"""Receiving from Vonage: every signing method, GET, form and JSON webhooks, stale and forged ones refused, parts."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import get_args

import httpx
import pytest

from smsconnector.app import App
from smsconnector.testing import Database, LiveServer, eventually
from smsconnector_vonage.fake import FakeVonage
from smsconnector_vonage.settings import SignatureMethod

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
INBOUND = "/webhooks/vonage/inbound"


def inbound_rows(db: Database) -> list[dict[str, object]]:
    return db.rows(
        "SELECT provider_message_id, from_number, to_number, body, incomplete FROM messages WHERE direction = 'inbound'"
    )


@pytest.mark.parametrize("method", get_args(SignatureMethod))
def test_each_signing_method_is_accepted_and_a_wrong_secret_refused(
    method: SignatureMethod, make_app: Callable[..., App], live_server: Callable[[App], LiveServer], db: Database
) -> None:
    signer, forger = (
        FakeVonage(signature_method=method),
        FakeVonage(signature_method=method, signature_secret="not-the-secret"),
    )
    server = live_server(
        make_app(
            plugins={"vonage": {"signature_secret": signer.signature_secret, "signature_method": method}},
            numbers=[{"number": "+15555550100", "provider": "vonage", "skill": "support"}],
        )
    )

    before = db.contents()
    forged = forger.post(server.url + INBOUND, forger.inbound("Refund me", message_id="FORGED"))
    after_forgery = db.contents()
    authentic = signer.post(server.url + INBOUND, signer.inbound("Refund me", message_id="AUTHENTIC"))

    assert (forged.status_code, authentic.status_code) == (403, 200)
    assert after_forgery == before
    assert [row["provider_message_id"] for row in inbound_rows(db)] == ["AUTHENTIC"]


@pytest.mark.parametrize("age", [-700, 700], ids=["from the future", "stale"])
def test_a_timestamp_far_from_now_is_refused_and_stores_nothing(
    age: int, vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app(vonage={"max_signature_age_seconds": 600}))
    before = db.contents()

    replayed = fake.post(server.url + INBOUND, fake.inbound("Refund me", timestamp=int(time.time()) - age))
    after_replay = db.contents()
    fresh = fake.post(server.url + INBOUND, fake.inbound("Refund me", timestamp=int(time.time()) - 500))

    assert replayed.status_code == 403 and replayed.json()["error"] == "forbidden"
    assert after_replay == before
    assert fresh.status_code == 200 and len(inbound_rows(db)) == 1


@pytest.mark.parametrize("change", ["unsigned", "text changed", "sig of another secret", "no timestamp"])
def test_a_forged_webhook_is_refused_and_stores_nothing(
    change: str,
    vonage_app: Callable[..., App],
    live_server: Callable[[App], LiveServer],
    fake: FakeVonage,
    db: Database,
) -> None:
    server = live_server(vonage_app())
    params = fake.inbound("Refund me")
    if change == "unsigned":
        del params["sig"]
    elif change == "text changed":
        params["text"] = "Refund me twice"
    elif change == "sig of another secret":
        params = FakeVonage(signature_secret="guess").inbound("Refund me")
    else:
        del params["timestamp"]
    before = db.contents()

    response = fake.post(server.url + INBOUND, params, how="json")

    assert response.status_code == 403
    assert db.contents() == before


def test_no_signature_secret_refuses_every_webhook(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app(vonage={"signature_secret": None}))

    response = fake.post(server.url + INBOUND, fake.inbound("Refund me"))

    assert response.status_code == 403 and "signature_secret" in response.text
    assert inbound_rows(db) == []


@both_databases
@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_get_form_and_json_webhooks_are_each_stored_once(
    how: str, vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app())
    params = fake.inbound("Where is my parcel? 5 & 6 = 11", message_id="0B0000004B65F62F")

    answers = [fake.post(server.url + INBOUND, params, how=how).status_code for _ in range(3)]  # Vonage retries

    assert answers == [200, 200, 200]
    assert inbound_rows(db) == [
        {
            "provider_message_id": "0B0000004B65F62F",
            "from_number": "+14155550123",
            "to_number": "+15555550100",
            "body": "Where is my parcel? 5 & 6 = 11",
            "incomplete": False,
        }
    ]


@both_databases
def test_parts_arriving_shuffled_are_joined_into_one_message(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app())
    text = "".join(f"Sentence {n:02d} of a long complaint about a parcel that never came. " for n in range(8))
    parts = fake.inbound_parts(text, reference=42)
    assert len(parts) >= 3
    random.Random(7).shuffle(parts)

    answers = [fake.post(server.url + INBOUND, part, how="form").status_code for part in parts]

    assert answers == [200] * len(parts)
    rows = eventually(lambda: inbound_rows(db))
    assert [(row["body"], bool(row["incomplete"])) for row in rows] == [(text, False)]


def test_a_unicode_message_by_get_is_kept_whole(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    server = live_server(vonage_app())

    response = fake.post(server.url + INBOUND, fake.inbound("Привет, где заказ? 📦"), how="get")

    assert response.status_code == 200
    assert [row["body"] for row in inbound_rows(db)] == ["Привет, где заказ? 📦"]


def test_json_numbers_and_booleans_are_read_as_the_text_vonage_signs(
    vonage_app: Callable[..., App], live_server: Callable[[App], LiveServer], fake: FakeVonage, db: Database
) -> None:
    # Vonage documents its JSON webhooks' fields, not their types: a count sent as a number still checks.
    server = live_server(vonage_app())
    text = "".join(f"Sentence {n:02d} of a long complaint about a parcel that never came. " for n in range(8))
    bodies = []
    for part in fake.inbound_parts(text, reference=300):
        typed: dict[str, object] = {**part, "concat": True}
        for name in ("concat-ref", "concat-total", "concat-part"):
            typed[name] = int(part[name])
        bodies.append(json.dumps(typed).encode())

    answers = [
        httpx.post(server.url + INBOUND, content=body, headers={"Content-Type": "application/json"}).status_code
        for body in bodies
    ]

    assert answers == [200] * len(bodies)
    assert [row["body"] for row in eventually(lambda: inbound_rows(db))] == [text]
