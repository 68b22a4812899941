"""A real ``smsconnector serve`` on loopback with the simulator, and the system's Chromium driven by Playwright.

Chromium comes from the system's packages: ``$SMSCONNECTOR_TEST_CHROMIUM``, else ``/usr/bin/chromium``; the tests
skip, saying so, where there is none. Screenshots go to ``artifacts/`` (``$SMSCONNECTOR_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsconnector.testing import eventually
from smsconnector.testing.database import postgres_available, postgres_schema

from ..processes import command_env, free_port, healthy, upgrade

ADMIN_TOKEN = "admin-browser-token"
BRAND_NUMBER = "+15555550100"
CONSUMER = "+14155550123"
ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    """The system's Chromium, if there is one."""
    path = os.environ.get("SMSCONNECTOR_TEST_CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).is_file() and os.access(path, os.X_OK) else None


def artifacts() -> Path:
    """Where the tests leave their screenshots."""
    folder = Path(os.environ.get("SMSCONNECTOR_TEST_ARTIFACTS") or ROOT / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Host:
    """``smsconnector serve`` in a process of its own, on one port across restarts."""

    def __init__(self, folder: Path, database_url: str, configuration: str = "", **settings: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "smsconnector.toml").write_text(f"""
database_url = "{database_url}"
log_level = "info"

[api]
admin_tokens = ["{ADMIN_TOKEN}"]

[plugins]
enabled = ["simulator"]

[plugins.simulator]
delivery_delay_seconds = 0.3

[[numbers]]
number = "{BRAND_NUMBER}"
provider = "simulator"
skill = "support"
rate_per_second = 0
{configuration}""")
        self.env = command_env(**settings)
        upgrade(self.env, cwd=folder)
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=15)

    def start(self) -> None:
        with (self.folder / "serve.log").open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(self.port)],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        eventually(lambda: self.process.poll() is not None or healthy(self.url), timeout=30)
        assert self.process.poll() is None, self.logged()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def logged(self) -> str:
        """What the server wrote: its log lines, access lines included."""
        return (self.folder / "serve.log").read_text()

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, **kwargs)

    def agent(self, name: str, status: str = "online") -> dict[str, Any]:
        """A new agent with the support skill: its id and token."""
        response = self.admin(
            "POST", "/api/agents", json={"name": name, "skills": ["support"], "max_concurrent": 5, "status": status}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def outbox(self) -> list[dict[str, Any]]:
        """What the brand sent through the simulator."""
        return self.http.get("/simulator/outbox").json()

    def text(self, text: str, consumer: str = CONSUMER, media: list[dict[str, str]] | None = None) -> None:
        """Post a consumer's text as the simulator's provider would."""
        body = {
            "id": f"t-{os.urandom(6).hex()}",
            "from": consumer,
            "to": BRAND_NUMBER,
            "text": text,
            "media": media or [],
        }
        assert self.http.post("/webhooks/simulator/inbound", json=body).status_code == 200


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one module's tests. Playwright's synchronous API keeps an event loop running in the test
    thread while it is open, where ``asyncio.run`` then refuses to start: the browser closes with the module, so
    the tests collected after it start theirs as usual."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium: install the system's package (apt-get install chromium) or set "
            "SMSCONNECTOR_TEST_CHROMIUM to its executable"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    """A served host on SQLite; tests that also run on PostgreSQL parametrize it ``indirect``."""
    if request.param == "postgres":
        if reason := postgres_available():
            pytest.skip(reason)
        with postgres_schema() as url:
            yield from _served(tmp_path, url)
    else:
        yield from _served(tmp_path, f"sqlite:///{tmp_path / 'host.db'}")


def _served(folder: Path, database_url: str, configuration: str = "", **settings: str) -> Iterator[Host]:
    host = Host(folder, database_url, configuration, **settings)
    host.start()
    try:
        yield host
    finally:
        host.http.close()
        host.stop()


@contextmanager
def served(folder: Path, configuration: str = "", **settings: str) -> Iterator[Host]:
    """A host on SQLite with ``configuration`` added to its file and ``settings`` in its environment, for a test
    that needs settings of its own."""
    yield from _served(folder, f"sqlite:///{folder / 'host.db'}", configuration, **settings)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context
    context.close()
