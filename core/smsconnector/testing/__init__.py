"""Test helpers for smsconnector and its plugins: a pytest plugin, opt-in with ``pytest_plugins``.

::

    pytest_plugins = ["smsconnector.testing"]

    def test_my_provider(make_app, live_server):
        app = make_app(plugins={"my": {"token": "x"}})
        server = live_server(app)
        httpx.post(server.url + "/webhooks/my/inbound", ...)

Fixtures:

- ``database_url``: a fresh, migrated-on-demand database per test; parametrize with ``@pytest.mark.parametrize(
  "database_url", ["sqlite", "postgres"], indirect=True)`` to run on both. PostgreSQL tests skip, with the
  reason, when no server answers at ``SMSCONNECTOR_TEST_POSTGRES_URL`` (default: local ``test`` database).
- ``app_defaults``: the configuration every ``make_app`` starts from (override it in a conftest).
- ``make_app``: builds an :class:`~smsconnector.app.App` on that database with fast sender timings and the
  simulator enabled, migrated.
- ``live_server``: serves an app with uvicorn on a loopback port over real HTTP; stopped after the test.
- ``db``: a synchronous view of the test database for counting rows.
- ``recording_proxy``: a forward proxy on loopback that notes what passes through it (a plugin's proxy
  settings), with the proxy variables cleared from the environment until the test sets them.

``smsconnector.testing.entrypoints`` is the kit of entry-point plugins' tests (its ``clean_environment`` fixture,
no configuration but the test's, is registered here).

A provider's fake API: subclass ``smsconnector.testing.fake.FakeProvider`` (requests recorded, 429/5xx and
stalls scripted, served on loopback).

Helpers: ``assert_declines_other_providers(plugin, app)``; ``eventually(probe, timeout=...)`` polls until true;
``db.contents()`` every row, to show a refusal changed nothing. ``smsconnector.testing.hostile`` (with
``hypothesis``) makes hostile webhook and API bodies and checks the promise each must keep;
``smsconnector.testing.contract`` is the suite every provider plugin runs (docs/writing-a-provider.md).
"""

# ruff: noqa: E402  (the imports follow the assertion-rewrite registration on purpose)
from __future__ import annotations

import pytest

# Before the import below, so that the kit's assertions explain a failure as a test's own do.
pytest.register_assert_rewrite("smsconnector.testing.entrypoints")

from .checks import assert_declines_other_providers
from .database import Database, postgres_available, postgres_url
from .entrypoints import clean_environment
from .fixtures import BRAND_NUMBER, app_defaults, database_url, db, live_server, make_app
from .polling import eventually
from .proxy import PROXY_VARIABLES, RecordingProxy, recording_proxy
from .server import LiveServer

__all__ = [
    "BRAND_NUMBER",
    "Database",
    "LiveServer",
    "PROXY_VARIABLES",
    "RecordingProxy",
    "app_defaults",
    "assert_declines_other_providers",
    "clean_environment",
    "database_url",
    "db",
    "eventually",
    "live_server",
    "make_app",
    "postgres_available",
    "postgres_url",
    "recording_proxy",
]
