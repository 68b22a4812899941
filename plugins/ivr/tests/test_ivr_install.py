"""The plugin as installed: listed by the CLI, disabled by configuration, and its table built by its migration."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from smsconnector.cli import main

from .ivr_support import AUTH, alone, both_databases


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No configuration but what the test sets: no SMSCONNECTOR_* variables, no ./smsconnector.toml."""
    for name in [n for n in os.environ if n.startswith("SMSCONNECTOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_the_cli_lists_the_plugin_with_its_version_and_hooks(clean_environment, capsys):
    assert main(["plugins", "--json"]) == 0

    [ivr] = [p for p in json.loads(capsys.readouterr().out) if p["name"] == "ivr"]
    assert ivr == {"name": "ivr", "distribution": "smsconnector-ivr", "version": "0.1.0", "enabled": True,
                   "hooks": ["smsconnector_configure", "smsconnector_migrations", "smsconnector_register_routes",
                             "smsconnector_route"]}

    assert main(["plugins"]) == 0
    [row] = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("ivr ")]
    assert row[:4] == ["ivr", "smsconnector-ivr", "0.1.0", "yes"]


def test_the_cli_shows_it_disabled_when_configuration_says_so(clean_environment, capsys):
    clean_environment.setenv("SMSCONNECTOR_PLUGINS__DISABLED", "ivr")

    assert main(["plugins", "--json"]) == 0

    [ivr] = [p for p in json.loads(capsys.readouterr().out) if p["name"] == "ivr"]
    assert (ivr["enabled"], ivr["hooks"]) == (False, [])


def test_disabled_the_endpoint_is_gone_and_the_host_still_serves(make_app, live_server):
    server = live_server(make_app(plugins={"disabled": alone("ivr") + ["ivr"]}))

    assert httpx.post(f"{server.url}/api/ivr/deflections", json={}, headers=AUTH).status_code == 404
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


@both_databases
def test_the_migration_builds_exactly_the_model(make_app, db):
    make_app(plugins={"disabled": alone("ivr")}).upgrade_database()  # a second upgrade is a no-op

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)

    assert [d for d in diff if "ivr_deflections" in repr(d)] == []
    assert db.scalar("SELECT version_num FROM alembic_version WHERE version_num LIKE 'ivr%'") == "ivr_0001"
