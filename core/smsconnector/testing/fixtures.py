"""The pytest fixtures of ``smsconnector.testing``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..app import App
from ..config import _merge, load_config
from .database import Database, postgres_available, postgres_schema
from .server import LiveServer

#: The brand number test apps serve, through the simulator (which test apps enable), unless a test configures others.
BRAND_NUMBER = "+15555550100"

FAST_SENDER = {"poll_interval_seconds": 0.05, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.2,
               "default_rate_per_second": 0, "lease_seconds": 5}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test: ``sqlite`` (default) or ``postgres`` via indirect parametrize."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'smsconnector.db'}"
        return
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    with postgres_schema() as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A synchronous view of the test database."""
    database = Database(database_url)
    yield database
    database.close()


MakeApp = Callable[..., App]


@pytest.fixture
def app_defaults() -> dict[str, Any]:
    """Configuration every ``make_app`` starts from; override this fixture in a conftest to change it."""
    return {}


@pytest.fixture
def make_app(database_url: str, app_defaults: dict[str, Any]) -> MakeApp:
    """Build a migrated app on the test database.

    Keyword arguments override configuration keys (``plugins={"twilio": {...}}`` sets a plugin's section);
    ``register=[("spy", SpyPlugin())]`` registers extra plugin objects (a list given as ``plugins`` does too).
    """

    def make(*, register: Sequence[tuple[str, Any]] = (), migrate: bool = True, **overrides: Any) -> App:
        if isinstance(overrides.get("plugins"), (list, tuple)):
            register = [*register, *overrides.pop("plugins")]
        base: dict[str, Any] = {
            "database_url": database_url,
            "public_url": "http://testserver",
            "sender": FAST_SENDER,
            # Answered once routed, so a test can look at the conversation right after posting a webhook.
            "inbound": {"acknowledge": "routed"},
            "numbers": [{"number": BRAND_NUMBER, "provider": "simulator", "skill": "support"}],
            # Off in a deployment unless enabled: the simulator takes messages without credentials.
            "plugins": {"enabled": ["simulator"]},
        }
        config = load_config(env={}, overrides=_merge(_merge(base, app_defaults), overrides))
        app = App(config, plugins=register)
        if migrate:
            app.upgrade_database()
        return app

    return make


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start an app on a loopback port over real HTTP: ``server = live_server(app)``; ``server.url``.
    ``live_server(app, port=8123)`` listens on that port rather than a free one."""
    servers: list[LiveServer] = []

    def start(app: App, *, port: int = 0) -> LiveServer:
        server = LiveServer(app, port=port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
