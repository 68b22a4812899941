"""How fast the agent workspace opens for an agent with 500 open conversations.

    python bench/workspace.py [--conversations 500] [--loads 30]

Seeds an agent with that many open conversations (one consumer message each), starts ``smsconnector serve`` on
loopback and measures, on SQLite and on PostgreSQL (when a server answers at ``SMSCONNECTOR_TEST_POSTGRES_URL``):

- **HTTP**: the page and the API calls it makes to show the list (``/workspace``, ``/api/me``, the
  conversation pages, ``/api/skills``), one after another as the page's first paint waits for them;
- **browser**: the system's Chromium (``$SMSCONNECTOR_TEST_CHROMIUM`` or ``/usr/bin/chromium``) loading the
  signed-in page until every conversation is listed: from the start of navigation to the page's own
  ``conversations-listed`` performance mark, and as Playwright waited for it (its own round trips included).

Each prints p50 and p95 over ``--loads`` loads, after one warm-up load.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url
from sqlmodel import Session

from smsconnector.auth import new_token, token_digest
from smsconnector.messages import utcnow
from smsconnector.store.models import Agent, AgentSkill, Conversation, Message
from smsconnector.testing.database import postgres_available, postgres_schema

BRAND = "+15555550100"
ADMIN = "bench-admin-token"


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'workspace.db'}"
    else:
        with postgres_schema() as url:
            yield url


def seed(url: str, conversations: int) -> str:
    """An online agent with ``conversations`` open conversations assigned; the agent's token."""
    sync = make_url(url)
    if sync.get_backend_name() == "postgresql":
        sync = sync.set(drivername="postgresql+psycopg")
    engine = create_engine(sync)
    token = new_token()
    now = utcnow()
    with Session(engine) as session:
        agent = Agent(name="Bench agent", status="online", max_concurrent=conversations, token_hash=token_digest(token))
        session.add(agent)
        session.flush()
        session.add(AgentSkill(agent_id=agent.id, skill="support"))
        for n in range(conversations):
            at = now - timedelta(seconds=conversations - n)
            consumer = f"+1415{n:07d}"
            conversation = Conversation(
                consumer_number=consumer,
                brand_number=BRAND,
                provider="simulator",
                status="assigned",
                skill="support",
                agent_id=agent.id,
                opened_at=at,
                assigned_at=at,
                last_message_at=at,
            )
            session.add(conversation)
            session.flush()
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction="inbound",
                    provider="simulator",
                    provider_message_id=f"seed-{n}",
                    from_number=consumer,
                    to_number=BRAND,
                    body=f"Question {n} about my order",
                    status="received",
                    created_at=at,
                    updated_at=at,
                )
            )
        session.commit()
    engine.dispose()
    return token


@contextmanager
def serving(url: str, folder: Path) -> Iterator[str]:
    (folder / "smsconnector.toml").write_text(f"""
database_url = "{url}"
log_level = "warning"
[api]
admin_tokens = ["{ADMIN}"]
[[numbers]]
number = "{BRAND}"
provider = "simulator"
skill = "support"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONNECTOR_")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((folder / "serve.log").read_text())
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def migrate(url: str, folder: Path) -> None:
    (folder / "smsconnector.toml").write_text(f'database_url = "{url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONNECTOR_")}
    subprocess.run([sys.executable, "-m", "smsconnector.cli", "db", "upgrade"], cwd=folder, env=env, check=True)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def http_loads(base: str, session: str, loads: int, conversations: int) -> list[float]:
    """The page and the calls its first paint waits for, one after another."""
    headers = {"authorization": f"Bearer {session}"}
    samples = []
    with httpx.Client(base_url=base) as http:
        for _ in range(loads + 1):
            started = time.perf_counter()
            http.get("/workspace").raise_for_status()
            http.get("/api/me", headers=headers).raise_for_status()
            listed, before = 0, None
            while True:
                params = {"status": "assigned", "limit": 200, **({"before": before} if before else {})}
                page = http.get("/api/conversations", params=params, headers=headers).json()["items"]
                listed += len(page)
                if len(page) < 200:
                    break
                before = page[-1]["id"]
            http.get("/api/skills", headers=headers).raise_for_status()
            samples.append(time.perf_counter() - started)
            assert listed == conversations, listed
    return samples[1:]


def browser_loads(
    base: str, session: dict[str, str], loads: int, conversations: int
) -> tuple[list[float], list[float]] | None:
    """Chromium loading the signed-in page until every conversation is listed: as the page measures it (from the
    start of navigation to its ``conversations-listed`` mark), and as the driver waited for it."""
    chromium = os.environ.get("SMSCONNECTOR_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        return None
    import json

    from playwright.sync_api import sync_playwright

    samples, marked = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.add_init_script(f"sessionStorage.setItem('smsconnector.session', {json.dumps(json.dumps(session))})")
        for _ in range(loads + 1):
            started = time.perf_counter()
            page.goto(f"{base}/workspace")
            page.locator(".conversation-item").nth(conversations - 1).wait_for()
            samples.append(time.perf_counter() - started)
            marked.append(
                page.evaluate("() => performance.getEntriesByName('conversations-listed')[0].startTime") / 1000
            )
            # Each load stands for an agent opening the page once: the page's work after its first paint (the
            # stream connecting, the list reloaded once it listens) is left to finish before the next load.
            time.sleep(0.5)
            page.goto("about:blank")
        browser.close()
    return marked[1:], samples[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--loads", type=int, default=30)
    args = parser.parse_args()
    kinds = ["sqlite"] + ([] if postgres_available() else ["postgres"])
    print(
        f"workspace load, {args.conversations} open conversations, {args.loads} loads each, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    for kind in kinds:
        with database(kind) as url, tempfile.TemporaryDirectory() as folder:
            migrate(url, Path(folder))
            token = seed(url, args.conversations)
            with serving(url, Path(folder)) as base:
                session = httpx.post(f"{base}/api/sessions", headers={"authorization": f"Bearer {token}"}).json()
                http = http_loads(base, session["token"], args.loads, args.conversations)
                print(f"{kind}: HTML and the API calls of the first paint: {percentiles(http)}", flush=True)
                shown = browser_loads(base, session, args.loads, args.conversations)
                if shown is None:
                    print(f"{kind}: Chromium: skipped (no Chromium)")
                    continue
                marked, waited = shown
                print(
                    f"{kind}: Chromium, navigation to {args.conversations} conversations listed: "
                    f"{percentiles(marked)} (as the driver waited for it: {percentiles(waited)})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
