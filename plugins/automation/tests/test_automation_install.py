"""The plugin as installed: listed by the CLI, disabled by configuration, and its table built by its migration."""

from __future__ import annotations

import httpx

from smsconnector.testing.entrypoints import alone, both_databases, cli_listing, cli_row, schema_differences

from .automation_support import AUTH, TABLE


def test_the_cli_lists_the_plugin_with_its_version_and_hooks(clean_environment, capsys):
    assert cli_listing("automation", capsys) == {
        "name": "automation", "distribution": "smsconnector-automation", "version": "0.1.0", "enabled": True,
        "hooks": ["smsconnector_configure", "smsconnector_migrations", "smsconnector_register_routes",
                  "smsconnector_route"]}
    assert cli_row("automation", capsys)[:4] == ["automation", "smsconnector-automation", "0.1.0", "yes"]


def test_the_cli_shows_it_disabled_when_configuration_says_so(clean_environment, capsys):
    clean_environment.setenv("SMSCONNECTOR_PLUGINS__DISABLED", "automation")

    listed = cli_listing("automation", capsys)
    assert (listed["enabled"], listed["hooks"]) == (False, [])


def test_disabled_the_endpoint_is_gone_and_the_host_still_serves(make_app, live_server):
    server = live_server(make_app(plugins={"disabled": alone("automation") + ["automation"]}))

    assert httpx.post(f"{server.url}/api/automation/messages", json={}, headers=AUTH).status_code == 404
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}


@both_databases
def test_the_migration_builds_exactly_the_model(make_app, db):
    make_app(plugins={"disabled": alone("automation")}).upgrade_database()  # a second upgrade is a no-op

    assert schema_differences(db, TABLE) == []
    assert db.scalar("SELECT version_num FROM alembic_version WHERE version_num LIKE 'automation%'") == (
        "automation_0001")
