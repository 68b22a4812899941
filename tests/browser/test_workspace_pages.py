"""The workspace and the consumer phone in a real Chromium against a real ``smsconnector serve``: what an agent
and a consumer see, live, without reloading."""

from __future__ import annotations

import importlib.util
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from smsconnector.segments import segment
from smsconnector.testing import eventually

from .conftest import ADMIN_TOKEN, CONSUMER, Host, artifacts, served

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def signed_in(context: Any, host: Host, token: str) -> Page:
    """The workspace in a new tab, signed in with ``token`` through the form."""
    page = context.new_page()
    page.goto(f"{host.url}/workspace")
    page.get_by_label("Agent token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#desk")).to_be_visible()
    return page


def phone(context: Any, host: Host) -> Page:
    page = context.new_page()
    page.goto(f"{host.url}/simulator/phone")
    return page


def text_from_phone(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def open_conversation(page: Page, consumer: str = CONSUMER) -> None:
    page.locator(".conversation-item", has_text=consumer).click()
    expect(page.locator("#conversation-title")).to_have_text(consumer)


def reply(page: Page, text: str) -> None:
    page.get_by_label("Reply").fill(text)
    page.locator("#send").click()


def last_ours(page: Page) -> Any:
    return page.locator(".message.ours").last


@pytest.mark.parametrize("host", ["sqlite", "postgres"], indirect=True)
def test_a_consumers_text_appears_live_the_reply_reaches_the_phone_and_is_delivered(context, host):
    ana = host.agent("Ana")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    desk = signed_in(context, host, ana["token"])
    session = desk.evaluate("() => JSON.parse(sessionStorage.getItem('smsconnector.session')).token")
    handset = phone(context, host)

    started = time.monotonic()
    text_from_phone(handset, "Hi, is my order on its way?")
    expect(desk.locator(".conversation-item", has_text=CONSUMER)).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2.0
    expect(desk.locator(".conversation-item .unread")).to_have_text("1")

    open_conversation(desk)
    expect(desk.locator(".message.theirs .text")).to_have_text("Hi, is my order on its way?")
    reply(desk, "It ships today.")
    expect(handset.locator(".message.theirs .text")).to_have_text("It ships today.", timeout=5000)
    expect(last_ours(desk).locator(".status")).to_have_text("delivered", timeout=5000)

    text_from_phone(handset, "Great, thanks! Can I change the delivery address?")
    expect(desk.locator(".message.theirs .text").last).to_have_text(
        "Great, thanks! Can I change the delivery address?", timeout=2000
    )
    host.text("Do you deliver on Sundays?", consumer="+14155550177")
    expect(desk.locator(".conversation-item").first).to_contain_text("+14155550177")  # newest activity first
    expect(desk.locator(".conversation-item", has_text="+14155550177").locator(".unread")).to_have_text("1")
    desk.get_by_label("Reply").fill("Yes: reply with the new address and I will update it before it ships.")
    expect(desk.locator("#counter")).to_contain_text("GSM-7 · 1 segment")
    # Neither the agent's token nor the session went into an address or the server's log.
    assert "GET /workspace" in host.logged()
    for secret in (ana["token"], session):
        assert not [url for url in requested if secret in url]
        assert secret not in host.logged()
    for width, height in ((1280, 800), (375, 740)):
        desk.set_viewport_size({"width": width, "height": height})
        desk.screenshot(path=artifacts() / f"workspace-{width}.png")
        handset.set_viewport_size({"width": width, "height": height})
        handset.screenshot(path=artifacts() / f"phone-{width}.png")
    expect(desk.locator("#reply")).to_be_visible()  # at 375 px the open conversation fills the screen


def test_the_counter_shows_the_segments_the_provider_is_asked_to_send_and_refuses_past_1600(context, host):
    ana = host.agent("Ana")
    host.text("Hello")
    desk = signed_in(context, host, ana["token"])
    open_conversation(desk)

    text = ("Thanks 🙂 your parcel 📦 is on its way 🚚 " * 6)[:200]
    desk.get_by_label("Reply").fill(text)
    expected = segment(text)
    expect(desk.locator("#counter")).to_contain_text(f"{expected.count} segments")
    expect(desk.locator("#counter")).to_contain_text("UCS-2 because of 🙂 📦 🚚")
    desk.locator("#send").click()
    sent = eventually(lambda: [m for m in host.outbox() if m["to"] == CONSUMER])
    assert sent[-1]["text"] == text
    assert segment(sent[-1]["text"]).count == expected.count
    expect(last_ours(desk).locator(".status")).to_have_text("delivered", timeout=5000)

    desk.get_by_label("Reply").fill("a" * 1601)
    expect(desk.locator("#counter")).to_contain_text("too long to send")
    desk.locator("#send").click()
    expect(desk.locator("#reply-error")).to_have_text(
        "Not sent: message is 1601 characters; the limit is 1600 characters."
    )
    time.sleep(0.5)
    assert len(host.outbox()) == 1
    expect(desk.locator(".message.ours")).to_have_count(1)


def test_stop_from_the_phone_shows_the_note_and_the_next_reply_is_refused(context, host):
    pytest.importorskip("smsconnector_compliance", reason="STOP is the compliance plugin's to handle")
    ana = host.agent("Ana")
    desk = signed_in(context, host, ana["token"])
    handset = phone(context, host)
    text_from_phone(handset, "Where is my order?")
    expect(desk.locator(".conversation-item", has_text=CONSUMER)).to_be_visible(timeout=2000)
    open_conversation(desk)

    handset.get_by_role("button", name="Send STOP").click()
    expect(desk.locator("#conversation-notes li").first).to_be_visible(timeout=3000)
    expect(desk.locator("#conversation-notes")).to_contain_text("Opted out: the consumer texted 'STOP'")
    reply(desk, "Your order ships today.")
    expect(desk.locator("#reply-error")).to_contain_text("opted_out")
    expect(last_ours(desk).locator(".status")).to_contain_text("refused")
    expect(last_ours(desk).locator(".status")).to_contain_text("(opted_out)")
    assert "Your order ships today." not in [m["text"] for m in host.outbox()]


def test_a_reply_held_back_by_quiet_hours_shows_when_it_will_go(context, tmp_path):
    pytest.importorskip("smsconnector_compliance", reason="quiet hours are the compliance plugin's")
    opens = (datetime.now(ZoneInfo("America/Los_Angeles")) + timedelta(hours=3)).replace(minute=0)
    window = f"{opens:%H}:00-{(opens + timedelta(hours=1)):%H}:00".replace("-00:00", "-24:00")
    with served(
        tmp_path,
        f"""
[plugins.compliance.quiet_hours]
classes = ["conversational"]
[plugins.compliance.quiet_hours.rules.US]
hours = "{window}"
""",
    ) as host:
        ana = host.agent("Ana")
        host.text("Are you open?")
        desk = signed_in(context, host, ana["token"])
        open_conversation(desk)
        reply(desk, "We open at nine.")
        expected = opens.astimezone().strftime("%H:%M")
        expect(last_ours(desk).locator(".status")).to_contain_text("deferred until", timeout=5000)
        expect(desk.locator("#reply-error")).to_contain_text("Your reply was deferred until")
        shown = last_ours(desk).locator(".status").inner_text()
        assert expected in shown or opens.astimezone().strftime("%I:%M %p").lstrip("0") in shown, shown
        assert host.outbox() == []


def test_a_send_the_provider_reports_failed_shows_its_reason_and_code(context, tmp_path):
    with served(tmp_path, SMSCONNECTOR_PLUGINS__SIMULATOR__AUTO_DELIVER="false") as host:
        ana = host.agent("Ana")
        host.text("Can you call me?")
        desk = signed_in(context, host, ana["token"])
        open_conversation(desk)
        reply(desk, "Calling you now.")
        expect(last_ours(desk).locator(".status")).to_have_text("sent", timeout=5000)
        sent = eventually(host.outbox)[-1]
        report = {"id": sent["id"], "status": "failed", "error_code": "30003", "error_message": "Unreachable handset"}
        assert host.http.post("/webhooks/simulator/status", json=report).status_code == 200
        expect(last_ours(desk).locator(".status")).to_have_text("failed: Unreachable handset (30003)", timeout=3000)


def test_after_a_server_restart_the_page_reconnects_and_shows_what_it_missed(context, host):
    ana = host.agent("Ana")
    host.text("First")
    desk = signed_in(context, host, ana["token"])
    open_conversation(desk)
    expect(desk.locator(".message.theirs .text")).to_have_text(["First"])

    host.stop()
    expect(desk.locator("#connection")).to_have_text("Connection lost: reconnecting…", timeout=5000)
    host.start()
    host.text("Sent while you were away")
    host.text("Are you there?", consumer="+14155550188")
    expect(desk.locator("#connection")).to_be_hidden(timeout=10000)
    expect(desk.locator(".message.theirs .text")).to_have_text(["First", "Sent while you were away"], timeout=5000)
    expect(desk.locator(".conversation-item", has_text="+14155550188")).to_be_visible(timeout=5000)


def test_a_hostile_consumer_text_is_shown_as_text_and_runs_nothing(context, host):
    ana = host.agent("Ana")
    desk = signed_in(context, host, ana["token"])
    dialogs: list[str] = []
    violations: list[str] = []
    desk.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    desk.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    host.text(HOSTILE)
    open_conversation(desk)
    expect(desk.locator(".message.theirs .text")).to_have_text(HOSTILE)
    assert desk.locator("#messages img").count() == 0
    assert desk.locator("#messages script").count() == 0
    # Even a script that did get into the page could not run inline: the policy forbids it.
    desk.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'alert(2)';
                             document.body.append(s); }""")
    time.sleep(0.5)
    assert dialogs == []
    assert violations, "the policy refused the inline script"


def test_a_second_agent_sees_nothing_of_the_first_agents_conversation(context, browser, host):
    ana = host.agent("Ana")
    host.text("My account number is 1234")
    ana_desk = signed_in(context, host, ana["token"])
    expect(ana_desk.locator(".conversation-item", has_text=CONSUMER)).to_be_visible()
    conversation_id = host.admin("GET", "/api/conversations").json()["items"][0]["id"]

    ben = host.agent("Ben")
    other = browser.new_context()
    try:
        ben_desk = signed_in(other, host, ben["token"])
        expect(ben_desk.locator("#no-conversations")).to_be_visible()
        expect(ben_desk.locator(".conversation-item")).to_have_count(0)
        status = ben_desk.evaluate(
            """async (id) => {
            const session = JSON.parse(sessionStorage.getItem('smsconnector.session'));
            const response = await fetch(`/api/conversations/${id}`,
                                         {headers: {authorization: `Bearer ${session.token}`}});
            return response.status; }""",
            conversation_id,
        )
        assert status == 403
        assert "1234" not in ben_desk.content()

        session = ben_desk.evaluate("() => JSON.parse(sessionStorage.getItem('smsconnector.session')).token")
        ben_desk.get_by_role("button", name="Sign out").click()
        expect(ben_desk.get_by_label("Agent token")).to_be_visible()
        assert host.http.get("/api/me", headers={"authorization": f"Bearer {session}"}).status_code == 401
    finally:
        other.close()


def test_the_admin_pages_show_agents_queues_numbers_and_plugins_and_a_new_agents_token_once(context, host):
    host.agent("Ana", status="away")
    host.text("Anyone there?")
    page = context.new_page()
    page.goto(f"{host.url}/admin")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#agents")).to_contain_text("Ana")
    expect(page.locator("#queues tr", has_text="support")).to_contain_text("1")
    expect(page.locator("#numbers")).to_contain_text("simulator")
    expect(page.locator("#plugins")).to_contain_text("router")

    page.get_by_label("Agent's name").fill("Cy")
    page.get_by_label("Skills (comma-separated)").fill("support")
    page.get_by_role("button", name="Add agent").click()
    expect(page.locator("#agent-token")).to_be_visible()
    token = page.locator("#agent-token-value").inner_text()
    expect(page.locator("#agents")).to_contain_text("Cy")
    assert host.http.get("/api/me", headers={"authorization": f"Bearer {token}"}).json()["agent"]["name"] == "Cy"
    page.screenshot(path=artifacts() / "admin-1280.png")

    if importlib.util.find_spec("smsconnector_compliance") is not None:  # the ledger is the compliance plugin's
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the consent ledger (CSV)").click()
        assert download.value.suggested_filename == "consent-ledger.csv"
        assert (
            Path(download.value.path())
            .read_text()
            .startswith(host.admin("GET", "/api/compliance/ledger.csv").text.splitlines()[0])
        )


def test_media_context_and_the_conversations_actions_from_the_keyboard_at_375_px(browser, host):
    ana = host.agent("Ana")
    host.text(
        "Here is the damage",
        media=[
            {"url": "https://example.com/damage.jpg", "content_type": "image/jpeg"},
            {"url": "https://example.com/receipt.pdf", "content_type": "application/pdf"},
            {"url": "javascript:alert(1)", "content_type": "text/html"},
        ],
    )
    follow_up = host.http.post(
        "/api/conversations",
        headers={"authorization": f"Bearer {ana['token']}"},
        json={
            "to": "+14155550166",
            "from": "+15555550100",
            "text": "About your call just now",
            "entry_point": "ivr",
            "context": {"call_reference": "CA-2231"},
        },
    )
    assert follow_up.status_code == 201, follow_up.text
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        desk = signed_in(context, host, ana["token"])
        assert desk.evaluate("() => document.documentElement.scrollWidth") <= 375  # nothing runs off the side

        desk.locator(".conversation-item", has_text="+14155550166").focus()
        desk.keyboard.press("Enter")
        expect(desk.locator("#conversation-facts")).to_contain_text("Entry pointivr")
        expect(desk.locator("#conversation-facts")).to_contain_text("call referenceCA-2231")
        expect(desk.locator("#reply")).to_be_focused()
        assert desk.evaluate("() => document.documentElement.scrollWidth") <= 375
        desk.get_by_role("button", name="Close conversation").click()
        expect(desk.locator("#empty-state")).to_have_text("Conversation closed.")
        expect(desk.locator(".conversation-item", has_text="+14155550166")).to_have_count(0)

        open_conversation(desk)
        image = desk.locator(".message.theirs img")
        expect(image).to_have_attribute("src", "https://example.com/damage.jpg")
        expect(desk.get_by_role("link", name="Attachment (application/pdf)")).to_have_attribute(
            "href", "https://example.com/receipt.pdf"
        )
        assert desk.locator('a[href^="javascript:"]').count() == 0

        desk.get_by_label("Status").select_option("away")
        eventually(lambda: host.admin("GET", f"/api/agents/{ana['id']}").json()["status"] == "away")
        expect(desk.locator("#me-load")).to_have_text("1 of 5 conversations")
        desk.get_by_label("Transfer to skill").select_option("support")
        desk.get_by_role("button", name="Transfer").click()
        expect(desk.locator("#empty-state")).to_have_text("Transferred to support.")
        expect(desk.locator(".conversation-item")).to_have_count(0)
        assert host.admin("GET", "/api/overview").json()["queues"] == {"support": 1}

        desk.get_by_role("button", name="New follow-up").click()
        desk.get_by_label("Consumer's number").fill("+14155550155")
        desk.get_by_label("From brand number").fill("+15555550100")
        desk.get_by_label("Message", exact=True).fill("Following up on your order")
        desk.get_by_role("dialog").get_by_role("button", name="Send").click()
        expect(desk.locator("#conversation-title")).to_have_text("+14155550155")
        expect(last_ours(desk).locator(".text")).to_have_text("Following up on your order")
        desk.screenshot(path=artifacts() / "workspace-375-actions.png")
    finally:
        context.close()


UNNAMED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((control) => !(control.labels && control.labels.length) && !control.getAttribute('aria-label')
                         && !(control.tagName === 'BUTTON' && control.textContent.trim()))
    .map((control) => control.outerHTML)"""


def test_every_control_on_every_page_has_a_name(context, host):
    ana = host.agent("Ana")
    host.text("Hello")
    desk = signed_in(context, host, ana["token"])
    open_conversation(desk)
    pages = [desk, phone(context, host), context.new_page()]
    pages[2].goto(f"{host.url}/admin")
    for page in pages:
        assert page.evaluate(UNNAMED_CONTROLS) == [], page.url
