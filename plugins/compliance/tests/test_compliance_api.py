"""The plugin's HTTP API over real HTTP: ledger export, consent recording, agent opt-outs, the send preview."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from smsconnector.app import App
from smsconnector.auth import token_digest
from smsconnector.config import load_config
from smsconnector.messages import utcnow
from smsconnector.store.models import Agent
from smsconnector.testing import BRAND_NUMBER, Database, LiveServer, postgres_available
from smsconnector.testing.database import postgres_schema

from .compliance_helpers import ADMIN_TOKEN, AGENT_TOKEN, CONSUMER, compliance_counts

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
#: a Wednesday evening in Miami, after Florida's 20:00 end
EVENING = datetime(2026, 7, 15, 22, 30, tzinfo=ZoneInfo("America/New_York"))
MARKETING_CONSENT = {
    "consumer": CONSUMER, "brand_number": BRAND_NUMBER, "action": "consent", "consent_class": "marketing",
    "method": "web_form", "source": "https://acme.example/join", "consumer_action": "ticked the SMS offers box",
    "disclosure_text": "By ticking this box you agree to receive marketing texts from Acme. Consent is not a "
                       "condition of purchase. Reply STOP to opt out.", "campaign": "summer-2026",
}


@dataclass
class Server:
    url: str
    app: Any
    agent: dict[str, str]
    agent_id: int
    db: Database
    http: httpx.Client  #: one client: making one per request costs more than the request

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url + path, **kwargs)

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> httpx.Response:
        return self.http.post(self.url + path, headers=headers or {}, content=raw,
                              json=body if raw is None else None)


def _start(app: Any, live: Callable[[Any], Any], db: Any, http: httpx.Client) -> Server:
    app.plugin("compliance").clock = lambda: EVENING.astimezone(UTC)
    with db.engine.begin() as conn:
        conn.execute(Agent.__table__.insert().values(  # type: ignore[attr-defined]
            name="Ada", status="online", max_concurrent=3, token_hash=token_digest(AGENT_TOKEN), created_at=utcnow()))
    agent_id = int(db.scalar("SELECT id FROM agents WHERE name = 'Ada'"))
    return Server(live(app).url, app, {"authorization": f"Bearer {AGENT_TOKEN}"}, agent_id, db, http)


@pytest.fixture
def server(make_app: Any, live_server: Any, db: Any) -> Iterator[Server]:
    """A fresh app on the test's database, served over HTTP, with an admin token and an agent."""
    with httpx.Client() as http:
        yield _start(make_app(api={"admin_tokens": [ADMIN_TOKEN]}), live_server, db, http)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One served app per database for the bad-input table: each case checks that it stored nothing."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
        else:
            if (reason := postgres_available()) is not None:
                pytest.skip(reason)
            url = stack.enter_context(postgres_schema())
        app = App(load_config(env={}, overrides={
            "database_url": url, "api": {"admin_tokens": [ADMIN_TOKEN]},
            "numbers": [{"number": BRAND_NUMBER, "provider": "simulator"}]}))
        app.upgrade_database()
        db = Database(url)
        stack.callback(db.close)
        servers: list[LiveServer] = []
        stack.callback(lambda: [s.stop() for s in servers])
        http = stack.enter_context(httpx.Client())
        yield _start(app, lambda a: servers.append(LiveServer(a).start()) or servers[-1], db, http)


# -- bad input: every endpoint, nothing stored -------------------------------------------------------------------

@dataclass(frozen=True)
class Bad:
    label: str
    method: str
    path: str
    status: int
    error: str
    auth: str = "admin"  #: admin, agent, wrong, none
    body: Any = None
    raw: bytes | None = None


CONSENT, OPT_OUT, PREVIEW, LEDGER = ("/api/compliance/consent", "/api/compliance/opt-out", "/api/compliance/preview",
                                     "/api/compliance/ledger.csv")
OPT_OUT_BODY = {"consumer": CONSUMER, "brand_number": BRAND_NUMBER, "method": "voice"}
PREVIEW_BODY = {"to": CONSUMER, "from": BRAND_NUMBER, "text": "Hello"}
BAD = [
    Bad("ledger without token", "GET", LEDGER, 401, "unauthenticated", auth="none"),
    Bad("ledger with a wrong token", "GET", LEDGER, 401, "unauthenticated", auth="wrong"),
    Bad("ledger with an agent token", "GET", LEDGER, 403, "forbidden", auth="agent"),
    Bad("ledger since is not a time", "GET", LEDGER + "?since=yesterday", 400, "malformed"),
    Bad("ledger since without a zone", "GET", LEDGER + "?since=2026-07-01T00:00:00", 400, "malformed"),
    Bad("ledger consumer not a number", "GET", LEDGER + "?consumer=abc", 400, "malformed"),
    Bad("ledger unknown parameter", "GET", LEDGER + "?format=xlsx", 400, "malformed"),
    Bad("consent without token", "POST", CONSENT, 401, "unauthenticated", auth="none", body=MARKETING_CONSENT),
    Bad("consent with a wrong token", "POST", CONSENT, 401, "unauthenticated", auth="wrong", body=MARKETING_CONSENT),
    Bad("consent with an agent token", "POST", CONSENT, 403, "forbidden", auth="agent", body=MARKETING_CONSENT),
    Bad("consent body is not JSON", "POST", CONSENT, 400, "malformed", raw=b"consumer=+13055550142"),
    Bad("consent body is a list", "POST", CONSENT, 400, "malformed", body=[MARKETING_CONSENT]),
    Bad("consent without source", "POST", CONSENT, 422, "invalid",
        body={k: v for k, v in MARKETING_CONSENT.items() if k != "source"}),
    Bad("marketing consent without disclosure", "POST", CONSENT, 422, "invalid",
        body={k: v for k, v in MARKETING_CONSENT.items() if k != "disclosure_text"}),
    Bad("marketing consent without the consumer's act", "POST", CONSENT, 422, "invalid",
        body={k: v for k, v in MARKETING_CONSENT.items() if k != "consumer_action"}),
    Bad("consent without class", "POST", CONSENT, 422, "invalid",
        body={k: v for k, v in MARKETING_CONSENT.items() if k != "consent_class"}),
    Bad("consent of an unknown class", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "consent_class": "everything"}),
    Bad("consent for a number that is not one", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "consumer": "call me"}),
    Bad("consent on a number we do not serve", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "brand_number": "+15555550199"}),
    Bad("consent dated in the future", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "occurred_at": "2030-01-01T00:00:00Z"}),
    Bad("consent dated without a zone", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "occurred_at": "2026-07-01T10:00:00"}),
    Bad("consent with an unknown field", "POST", CONSENT, 422, "invalid", body={**MARKETING_CONSENT, "vip": True}),
    Bad("consent with a bad disclosure hash", "POST", CONSENT, 422, "invalid",
        body={**MARKETING_CONSENT, "disclosure_hash": "abc"}),
    Bad("opt-out without token", "POST", OPT_OUT, 401, "unauthenticated", auth="none", body=OPT_OUT_BODY),
    Bad("opt-out with a wrong token", "POST", OPT_OUT, 401, "unauthenticated", auth="wrong", body=OPT_OUT_BODY),
    Bad("opt-out body is not JSON", "POST", OPT_OUT, 400, "malformed", auth="agent", raw=b"{not json"),
    Bad("opt-out without consumer", "POST", OPT_OUT, 422, "invalid", auth="agent",
        body={"brand_number": BRAND_NUMBER}),
    Bad("opt-out by an unknown method", "POST", OPT_OUT, 422, "invalid", auth="agent",
        body={**OPT_OUT_BODY, "method": "telepathy"}),
    Bad("preview without token", "POST", PREVIEW, 401, "unauthenticated", auth="none", body=PREVIEW_BODY),
    Bad("preview with a wrong token", "POST", PREVIEW, 401, "unauthenticated", auth="wrong", body=PREVIEW_BODY),
    Bad("preview body is not JSON", "POST", PREVIEW, 400, "malformed", auth="agent", raw=b"\xff\xfe"),
    Bad("preview without text", "POST", PREVIEW, 422, "invalid", auth="agent",
        body={"to": CONSUMER, "from": BRAND_NUMBER}),
    Bad("preview of an unknown class", "POST", PREVIEW, 422, "invalid", auth="agent",
        body={**PREVIEW_BODY, "message_class": "urgent"}),
    Bad("preview to a number that is not one", "POST", PREVIEW, 422, "invalid", auth="agent",
        body={**PREVIEW_BODY, "to": "12"}),
    Bad("preview from a number we do not serve", "POST", PREVIEW, 422, "invalid", auth="agent",
        body={**PREVIEW_BODY, "from": "+15555550199"}),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.label for b in BAD])
def test_bad_requests_are_refused_with_a_clear_error_and_store_nothing(shared: Server, bad: Bad) -> None:
    server, db = shared, shared.db
    headers = {"admin": ADMIN, "agent": server.agent, "wrong": {"authorization": "Bearer nope"}, "none": {}}[bad.auth]
    before = compliance_counts(db)

    if bad.method == "GET":
        reply = server.get(bad.path, headers=headers)
    else:
        reply = server.post(bad.path, bad.body, headers=headers, raw=bad.raw)

    assert reply.status_code == bad.status, reply.text
    assert reply.json()["error"] == bad.error
    assert reply.json()["detail"]
    assert compliance_counts(db) == before


def test_a_body_over_the_size_limit_is_refused(server: Server, db: Any) -> None:
    before = compliance_counts(db)

    reply = server.post(CONSENT, headers=ADMIN, raw=b'{"source": "' + b"x" * 70_000 + b'"}')

    assert (reply.status_code, reply.json()["error"]) == (413, "too_large")
    assert compliance_counts(db) == before


def test_validation_errors_name_every_wrong_field(server: Server) -> None:
    reply = server.post(CONSENT, {"consumer": "x", "brand_number": BRAND_NUMBER}, headers=ADMIN)

    assert reply.status_code == 422
    assert "consumer:" in reply.json()["detail"] and "source:" in reply.json()["detail"]


# -- what the endpoints do -----------------------------------------------------------------------------------------

@both_databases
def test_recorded_marketing_consent_is_kept_with_its_disclosure_and_lets_marketing_through(
        server: Server, db: Any) -> None:
    reply = server.post(CONSENT, MARKETING_CONSENT, headers=ADMIN)

    assert reply.status_code == 201, reply.text
    event = reply.json()
    assert (event["action"], event["consent_class"], event["recorded_by"]) == ("consent", "marketing", "admin")
    assert event["disclosure_hash"] == hashlib.sha256(MARKETING_CONSENT["disclosure_text"].encode()).hexdigest()
    assert event["occurred_at"] == "2026-07-16T02:30:00+00:00"
    assert event["recipient_zones"] == "America/New_York"
    [row] = db.rows("SELECT * FROM compliance_ledger")
    assert row["disclosure_text"] == MARKETING_CONSENT["disclosure_text"]

    preview = server.post(PREVIEW, {**PREVIEW_BODY, "message_class": "marketing"}, headers=server.agent).json()
    # Consent is there; 22:30 in Miami is after Florida's 20:00, so it would wait for 08:00.
    assert preview["verdict"] == {
        "action": "defer", "code": "quiet_hours", "until": "2026-07-16T12:00:00+00:00", "validity_seconds": None,
        "reason": "quiet hours for marketing messages: allowed 08:00-20:00 daily (US federal, 47 CFR 64.1200(c)(1); "
                  "Florida, Fla. Stat. 501.616(6)) in America/New_York; deferred to 2026-07-16 12:00 UTC "
                  "(2026-07-16 08:00 EDT)"}


def test_marketing_without_written_consent_is_refused_in_the_preview(server: Server) -> None:
    server.post(CONSENT, {**MARKETING_CONSENT, "consent_class": "informational"}, headers=ADMIN)

    verdict = server.post(PREVIEW, {**PREVIEW_BODY, "message_class": "marketing"}, headers=server.agent).json()
    informational = server.post(PREVIEW, {**PREVIEW_BODY, "message_class": "informational"},
                                headers=server.agent).json()

    assert (verdict["verdict"]["action"], verdict["verdict"]["code"]) == ("refuse", "no_consent")
    assert "prior express written consent for marketing" in verdict["verdict"]["reason"]
    assert informational["verdict"]["action"] == "allow"


def test_a_revocation_withdraws_marketing_but_keeps_informational(server: Server) -> None:
    server.post(CONSENT, MARKETING_CONSENT, headers=ADMIN)
    reply = server.post(CONSENT, {"consumer": CONSUMER, "brand_number": BRAND_NUMBER, "action": "revoke",
                                  "consent_class": "marketing", "method": "email",
                                  "source": "email of 2026-07-10"}, headers=ADMIN)
    server.post(CONSENT, {**MARKETING_CONSENT, "consent_class": "informational"}, headers=ADMIN)

    def verdict(cls: str) -> str:
        return server.post(PREVIEW, {**PREVIEW_BODY, "message_class": cls}, headers=server.agent).json()[
            "verdict"]["code"]

    assert reply.status_code == 201
    assert (verdict("marketing"), verdict("informational")) == ("no_consent", "allowed")


@both_databases
def test_an_agent_records_an_opt_out_given_by_phone_and_nothing_more_is_sent(server: Server, db: Any) -> None:
    reply = server.post(OPT_OUT, {**OPT_OUT_BODY, "source": "asked on call 4411 to stop texting"},
                        headers=server.agent)

    assert reply.status_code == 201, reply.text
    assert (reply.json()["recorded_by"], reply.json()["method"]) == (f"agent:{server.agent_id}", "voice")
    preview = server.post(PREVIEW, PREVIEW_BODY, headers=server.agent).json()["verdict"]
    assert (preview["action"], preview["code"]) == ("refuse", "opted_out")
    assert f"recorded by agent:{server.agent_id} (voice: asked on call 4411 to stop texting)" in preview["reason"]
    assert db.count("messages") == 0  # no confirmation text to someone who asked by phone


def test_the_preview_shows_encoding_segments_and_the_characters_that_force_ucs2(server: Server) -> None:
    gsm = server.post(PREVIEW, {**PREVIEW_BODY, "text": "Your order {A-1} ships today"}, headers=ADMIN).json()
    ucs2 = server.post(PREVIEW, {**PREVIEW_BODY, "text": "Thanks 😊 — see you Thursday! " * 3},
                       headers=server.agent).json()
    long = server.post(PREVIEW, {**PREVIEW_BODY, "text": "x" * 1601}, headers=server.agent).json()
    # The flag would straddle the first two parts: it moves whole to the second, as Twilio counts it.
    flag = server.post(PREVIEW, {**PREVIEW_BODY, "text": "a" * 65 + "🇫🇷" + "a" * 65}, headers=server.agent).json()

    assert (gsm["encoding"], gsm["segments"], gsm["units"], gsm["ucs2_characters"]) == ("GSM-7", 1, 30, [])
    assert (ucs2["encoding"], ucs2["segments"], ucs2["ucs2_characters"]) == ("UCS-2", 2, ["😊", "—"])
    assert (long["segments"], long["verdict"]["action"], long["verdict"]["code"]) == (11, "refuse", "too_long")
    assert (flag["segments"], flag["units"]) == (3, 134)


def test_the_preview_does_not_use_up_the_confirmation_or_count_against_caps(server: Server, db: Any) -> None:
    server.post(CONSENT, MARKETING_CONSENT, headers=ADMIN)
    server.app.plugin("compliance").clock = lambda: datetime(2026, 7, 15, 16, 0, tzinfo=UTC)
    before = compliance_counts(db)

    verdicts = [server.post(PREVIEW, {**PREVIEW_BODY, "message_class": "marketing"}, headers=ADMIN).json()["verdict"]
                for _ in range(4)]

    assert [v["action"] for v in verdicts] == ["allow"] * 4  # four previews, no cap reached
    assert verdicts[0]["validity_seconds"] == 8 * 3600  # 12:00 in Miami; Florida closes at 20:00
    assert compliance_counts(db) == before


@both_databases
def test_the_ledger_exports_as_csv_filtered_and_safe_to_open_in_a_spreadsheet(server: Server) -> None:
    other = "+14105550123"
    server.post(CONSENT, MARKETING_CONSENT, headers=ADMIN)
    server.post(CONSENT, {**MARKETING_CONSENT, "consumer": other, "consumer_action": "=HYPERLINK(\"x\")",
                          "occurred_at": "2026-07-01T10:00:00Z"}, headers=ADMIN)

    every = server.get(LEDGER, headers=ADMIN)
    mine = server.get(LEDGER, headers=ADMIN, params={"consumer": CONSUMER})
    since = server.get(LEDGER, headers=ADMIN, params={"since": "2026-07-10T00:00:00Z"})
    until = server.get(LEDGER, headers=ADMIN, params={"until": "2026-07-10T00:00:00+00:00"})

    assert every.status_code == 200 and every.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(every.text)))
    assert list(rows[0]) == ["id", "occurred_at", "consumer_number", "scope", "brand_number", "action",
                             "consent_class", "method", "source", "consumer_action", "raw_text", "matched", "tier",
                             "language", "disclosure_text", "disclosure_hash", "campaign", "inbound_message_id",
                             "message_id", "confirms_event_id", "confirmation", "confirmation_text",
                             "recipient_zones", "recorded_by"]
    assert [r["consumer_number"] for r in rows] == [CONSUMER, other]
    assert rows[1]["consumer_action"] == "'=HYPERLINK(\"x\")"
    assert rows[0]["disclosure_text"] == MARKETING_CONSENT["disclosure_text"]
    assert [r["consumer_number"] for r in csv.DictReader(io.StringIO(mine.text))] == [CONSUMER]
    assert [r["consumer_number"] for r in csv.DictReader(io.StringIO(since.text))] == [CONSUMER]
    assert [r["consumer_number"] for r in csv.DictReader(io.StringIO(until.text))] == [other]


def test_a_large_ledger_exports_every_row_once(server: Server, db: Any) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO compliance_ledger (occurred_at, consumer_number, scope, brand_number, action, method, "
            "recorded_by) VALUES " + ", ".join(
                f"('2026-07-01 00:00:00', '+1305555{i:04d}', 'number:{BRAND_NUMBER}', '{BRAND_NUMBER}', 'opt_out', "
                "'import', 'admin')" for i in range(2500)))

    rows = list(csv.DictReader(io.StringIO(server.get(LEDGER, headers=ADMIN).text)))

    assert len(rows) == 2500 and len({r["id"] for r in rows}) == 2500
