"""A consumer texts an ad's keyword: auto-reply, a conversation for the campaign's skill, a count; over HTTP."""

from __future__ import annotations

import httpx
import pytest

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.entrypoints import (
    CONSUMER,
    alone,
    as_json,
    at_work,
    beside_siblings,
    both_databases,
    delivered,
    snapshot,
    text_brand,
)

from .adkeywords_support import ADMIN, TABLE

PIZZA_REPLY = "Thanks for texting PIZZA! Show code PIZZA10 for 10% off. An agent will text you about your order."
KEYWORDS = {"match": "first_word", "keywords": [
    {"keyword": "PIZZA", "number": BRAND_NUMBER, "skill": "orders", "campaign": "spring-pizza", "reply": PIZZA_REPLY},
    {"keyword": "Free Pizza", "number": BRAND_NUMBER, "skill": "orders", "campaign": "spring-pizza",
     "reply": "Your free pizza is waiting.", "match": "exact"},
    {"keyword": "TACO", "number": BRAND_NUMBER, "skill": "orders", "campaign": "taco-tuesday", "reply": "Tacos!"},
]}


@pytest.fixture
def app(make_app):
    return make_app(plugins={"disabled": alone("adkeywords"), "adkeywords": KEYWORDS},
                    api={"admin_tokens": ["admintoken"]})


@beside_siblings("adkeywords")
def test_a_keyword_text_gets_the_auto_reply_and_a_conversation_for_the_campaigns_skill(make_app, live_server, db,
                                                                                        siblings):
    app = make_app(plugins={"disabled": alone("adkeywords", keep=siblings), **at_work(siblings),
                            "adkeywords": KEYWORDS})
    server = live_server(app)

    assert text_brand(server.url, "sim-1", "  Pizza! tonight?").status_code == 200

    [conversation] = db.rows("SELECT id, status, skill, entry_point, context FROM conversations")
    assert (conversation["status"], conversation["skill"], conversation["entry_point"]) == ("queued", "orders",
                                                                                           "adkeywords")
    assert as_json(conversation["context"]) == {"campaign": "spring-pizza", "keyword": "PIZZA"}
    assert db.rows("SELECT direction, conversation_id, handled_by FROM messages ORDER BY id") == [
        {"direction": "inbound", "conversation_id": conversation["id"], "handled_by": "adkeywords"},
        {"direction": "outbound", "conversation_id": conversation["id"], "handled_by": None}]
    sent = delivered(app)
    assert [(s["from"], s["to"], s["text"], s["message_class"]) for s in sent] == [
        (BRAND_NUMBER, CONSUMER, PIZZA_REPLY, "conversational")]
    assert db.rows("SELECT brand_number, keyword, campaign, matches FROM adkeyword_counts") == [
        {"brand_number": BRAND_NUMBER, "keyword": "PIZZA", "campaign": "spring-pizza", "matches": 1}]


@both_databases
def test_counts_per_keyword_and_campaign_are_kept_in_the_database_once_per_message(app, live_server, db):
    server = live_server(app)

    for sid, body in [("sim-1", "pizza"), ("sim-1", "pizza"), ("sim-2", "FREE PIZZA"), ("sim-3", "taco"),
                      ("sim-4", "Pizza please"), ("sim-5", "what's on the menu?")]:
        assert text_brand(server.url, sid, body).status_code == 200  # sim-1 twice: a provider retry, stored once

    stats = httpx.get(f"{server.url}/api/adkeywords/stats", headers=ADMIN)
    assert stats.status_code == 200
    assert [(k["keyword"], k["campaign"], k["matches"]) for k in stats.json()["keywords"]] == [
        ("FREE PIZZA", "spring-pizza", 1), ("PIZZA", "spring-pizza", 2), ("TACO", "taco-tuesday", 1)]
    assert stats.json()["campaigns"] == [{"campaign": "spring-pizza", "matches": 3},
                                         {"campaign": "taco-tuesday", "matches": 1}]
    assert db.scalar("SELECT sum(matches) FROM adkeyword_counts") == 4


def test_keywords_never_matched_are_listed_at_zero(app, live_server):
    server = live_server(app)

    stats = httpx.get(f"{server.url}/api/adkeywords/stats", headers=ADMIN).json()

    assert stats == {
        "keywords": [{"number": BRAND_NUMBER, "keyword": k, "campaign": c, "matches": 0, "first_matched_at": None,
                      "last_matched_at": None}
                     for k, c in [("FREE PIZZA", "spring-pizza"), ("PIZZA", "spring-pizza"), ("TACO", "taco-tuesday")]],
        "campaigns": [{"campaign": "spring-pizza", "matches": 0}, {"campaign": "taco-tuesday", "matches": 0}]}


def test_counts_outlive_a_keyword_removed_from_configuration(app, make_app, live_server):
    text_brand(live_server(app).url, "sim-1", "taco")
    pizza_only = {"keywords": [k for k in KEYWORDS["keywords"] if k["keyword"] == "PIZZA"]}
    later = make_app(plugins={"disabled": alone("adkeywords"), "adkeywords": pizza_only},
                     api={"admin_tokens": ["admintoken"]})

    stats = httpx.get(f"{live_server(later).url}/api/adkeywords/stats", headers=ADMIN).json()

    assert [(k["keyword"], k["matches"]) for k in stats["keywords"]] == [("PIZZA", 0), ("TACO", 1)]


def test_a_keyword_starts_a_new_conversation_even_mid_conversation(app, live_server, db):
    server = live_server(app)
    text_brand(server.url, "sim-1", "Hi, do you deliver?")

    text_brand(server.url, "sim-2", "TACO")

    assert db.rows("SELECT status, skill, entry_point FROM conversations ORDER BY id") == [
        {"status": "closed", "skill": "support", "entry_point": None},
        {"status": "queued", "skill": "orders", "entry_point": "adkeywords"}]


@both_databases
@pytest.mark.parametrize("body", ["STOP", "pizza stop", "Pizza, UNSUBSCRIBE"])
def test_an_opt_out_is_never_taken_for_a_keyword(app, live_server, db, body):
    server = live_server(app)

    assert text_brand(server.url, "sim-1", body).status_code == 200

    assert db.scalar("SELECT handled_by FROM messages WHERE direction = 'inbound'") != "adkeywords"
    assert db.count("adkeyword_counts") == 0
    assert PIZZA_REPLY not in [m["body"] for m in db.rows("SELECT body FROM messages WHERE direction = 'outbound'")]


@both_databases
@pytest.mark.parametrize(("headers", "detail"), [
    ({}, "an 'Authorization: Bearer <token>' header is required"),
    ({"Authorization": "Bearer not-the-admin"}, "unknown token"),
    ({"Authorization": "admintoken"}, "an 'Authorization: Bearer <token>' header is required"),
])
def test_stats_need_an_admin_token(app, live_server, db, headers, detail):
    server = live_server(app)
    before = snapshot(db, TABLE)

    response = httpx.get(f"{server.url}/api/adkeywords/stats", headers=headers)

    assert (response.status_code, response.json()) == (401, {"error": "unauthenticated", "detail": detail})
    assert snapshot(db, TABLE) == before
