"""Property: hostile bodies at every JSON door of the host -- the simulator's webhooks and every API body -- are
answered 2xx or 4xx, never 5xx, and a refusal leaves the database exactly as it was, on SQLite and PostgreSQL.

One database per test function; each example compares the database's contents before and after its request.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsconnector.testing import BRAND_NUMBER
from smsconnector.testing.hostile import assert_kept_its_promise, json_bodies

from .api_support import CONSUMERS, Desk, api_app

both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
_ids = itertools.count(1)


@pytest.fixture
def desk(make_app, live_server):
    # Routing failures would surface within 2 s rather than the default 10 s.
    desk = Desk(live_server(api_app(make_app, sender={"enabled": False}, inbound={"timeout_seconds": 2})))
    desk.agent("Ana")
    desk.text("c1")
    yield desk
    desk.close()


def _post(desk: Desk, path: str, raw: bytes, *, method: str = "POST", token: str | None = None) -> int:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token or desk.tokens['Ana']}"}
    return desk.http.request(method, path, content=raw, headers=headers).status_code


@both_databases
@EXAMPLES
@given(data=st.data())
def test_hostile_simulator_webhooks_get_2xx_or_4xx_and_refusals_store_nothing(desk, db, data):
    kind = data.draw(st.sampled_from(["inbound", "status"]))
    valid: dict[str, Any] = ({"id": f"sim-{next(_ids)}", "from": CONSUMERS["c2"], "to": BRAND_NUMBER, "text": "hi",
                              "media": [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}],
                              "segment": {"reference": 7, "total": 2, "sequence": 1}}
                             if kind == "inbound" else {"id": "SIM1", "status": "failed", "error_code": "30003",
                                                        "error_message": "unreachable"})
    raw = data.draw(json_bodies(valid))
    before = db.contents()

    status = desk.http.post(f"/webhooks/simulator/{kind}", content=raw).status_code

    assert_kept_its_promise(status, before, db)


def _conversation(desk: Desk) -> int:
    return int(desk.current("c1")["id"])


#: each API body: its path, method, whose token, and a valid body to break
TARGETS = {
    "reply": ("/api/conversations/{c}/messages", "POST", "admin",
              {"text": "It ships today.",
               "media": [{"url": "https://example.com/a.jpg", "content_type": "image/jpeg"}]}),
    "follow-up": ("/api/conversations", "POST", "agent",
                  {"to": CONSUMERS["c3"], "from": BRAND_NUMBER, "text": "About your call", "entry_point": "follow_up",
                   "context": {"call_reference": "A-1", "minutes": 3}, "skill": "support"}),
    "agent": ("/api/agents", "POST", "admin",
              {"name": "Ben", "max_concurrent": 2, "skills": ["support"], "status": "online"}),
    "agent change": ("/api/agents/{a}", "PATCH", "admin",
                     {"name": "Ana B.", "max_concurrent": 4, "skills": ["billing"]}),
    "agent status": ("/api/agents/{a}/status", "PUT", "agent", {"status": "away"}),
    "skill": ("/api/skills", "POST", "admin", {"name": "sales", "description": "Sales questions"}),
    "skill change": ("/api/skills/support", "PATCH", "admin", {"description": "Anything else"}),
    "transfer": ("/api/conversations/{c}/transfer", "POST", "admin", {"skill": "billing"}),
    "segment preview": ("/api/segments", "POST", "agent", {"text": "Your order ships today 📦"}),
}


@both_databases
@pytest.mark.parametrize("target", sorted(TARGETS))
@EXAMPLES
@given(data=st.data())
def test_hostile_api_bodies_get_2xx_or_4xx_and_refusals_store_nothing(desk, db, target, data):
    path, method, role, valid = TARGETS[target]
    raw = data.draw(json_bodies(valid))
    path = path.format(c=_conversation(desk), a=desk.agents["Ana"])
    token = None if role == "agent" else "admin-test-token"
    before = db.contents()

    status = _post(desk, path, raw, method=method, token=token)

    assert_kept_its_promise(status, before, db)


#: what a stranger may put after "Bearer " in a header (no line breaks; latin-1, as HTTP headers carry)
bearer_tokens = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                        max_size=300)


@both_databases
@EXAMPLES
@given(token=bearer_tokens)
def test_hostile_sign_ins_are_refused_and_open_no_session(desk, db, token):
    # The sign-in's only input is the token: a guess (or a one-time code's shape) opens nothing.
    before = db.contents()

    header = f"Bearer {token}".rstrip().encode("latin-1")  # as sent: HTTP allows no trailing space in a value
    status = desk.http.post("/api/sessions", headers={"authorization": header}).status_code

    assert status in (401, 403), f"answered {status}"
    assert_kept_its_promise(status, before, db)


def test_the_strategies_reach_the_refusals_that_matter():
    """The generated bodies do include what this file is about, so the property is not vacuous."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(raw=json_bodies({"text": "hi", "context": {"a": 1}}))
    def collect(raw: bytes) -> None:
        for label, marker in (("NUL", b"\\u0000"), ("surrogate", b"\\ud"), ("deep", b"[[[[[[[[[["),
                              ("huge", b"100000000000000000000"), ("infinite", b"Infinity")):
            if marker in raw:
                seen.add(label)

    collect()
    assert seen == {"NUL", "surrogate", "deep", "huge", "infinite"}

