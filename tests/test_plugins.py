"""Plugin discovery through real entry points, disabling by configuration, and failures that name the plugin."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from smsconnector.app import App
from smsconnector.config import load_config
from smsconnector.errors import ConfigError, PluginConfigError, PluginError
from smsconnector.plugins import load_plugins
from smsconnector.testing import BRAND_NUMBER, assert_declines_other_providers

EXAMPLE_SRC = Path(__file__).parent / "plugins" / "example" / "src"


def install(site: Path, name: str, version: str, entry_points: str, *, source: Path | None = None) -> None:
    """Install a distribution the way pip lays it out: a .dist-info with METADATA and entry_points.txt."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    if source is not None:
        (site / f"_{name.replace('-', '_')}.pth").write_text(str(source))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh site directory on sys.path, as a virtualenv's site-packages would be."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    for module in [m for m in sys.modules if m.startswith(("smsconnector_example", "broken_plugin"))]:
        monkeypatch.delitem(sys.modules, module)
    return path


@pytest.fixture
def example(site: Path) -> Path:
    install(site, "smsconnector-example", "1.2.3", "[smsconnector]\nexample = smsconnector_example:ExamplePlugin\n")
    return site


def test_installed_plugin_is_discovered_with_its_distribution_and_hooks(example):
    pm, infos = load_plugins()

    info = next(i for i in infos if i.name == "example")
    assert (info.distribution, info.version, info.enabled) == ("smsconnector-example", "1.2.3", True)
    assert info.hooks == ("smsconnector_configure", "smsconnector_route")
    assert pm.get_plugin("example") is not None
    assert {i.name for i in infos} >= {"router", "simulator"}  # built-ins come through the same group


def test_installed_plugin_hooks_run_in_the_pipeline(example, make_app, live_server, db):
    server = live_server(make_app(plugins={"example": {"greeting": "Hello from the example."}}))

    response = httpx.post(f"{server.url}/webhooks/simulator/inbound",
                          json={"id": "e1", "from": "+14155550123", "to": BRAND_NUMBER, "text": "example please"})

    assert response.status_code == 200
    [conversation] = db.rows("SELECT skill, entry_point FROM conversations")
    assert conversation == {"skill": "examples", "entry_point": "example"}
    assert db.scalar("SELECT handled_by FROM messages WHERE direction = 'inbound'") == "example"
    assert db.scalar("SELECT body FROM messages WHERE direction = 'outbound'") == "Hello from the example."


def test_disabled_plugin_is_listed_but_never_imported_or_registered(example):
    pm, infos = load_plugins(["example"])

    info = next(i for i in infos if i.name == "example")
    assert (info.enabled, info.hooks) == (False, ())
    assert pm.get_plugin("example") is None
    assert "smsconnector_example" not in sys.modules


def test_disabling_through_the_environment(example):
    config = load_config(env={"SMSCONNECTOR_PLUGINS__DISABLED": "example, simulator"})

    assert config.plugins.disabled == ("example", "simulator")
    app = App(config)
    assert app.plugin("example") is None and app.plugin("simulator") is None
    assert app.plugin("router") is not None


def test_plugin_that_fails_to_import_stops_start_up_naming_it(site):
    (site / "broken_plugin.py").write_text("raise RuntimeError('missing dependency: libfoo')\n")
    install(site, "smsconnector-broken", "0.3.1", "[smsconnector]\nbroken = broken_plugin\n")

    with pytest.raises(PluginError) as caught:
        load_plugins()

    assert str(caught.value).startswith("plugin 'broken' (smsconnector-broken 0.3.1): failed to import broken_plugin")
    assert "missing dependency: libfoo" in str(caught.value)


def test_plugin_with_a_misspelled_hook_stops_start_up(site):
    (site / "broken_plugin.py").write_text(
        "from smsconnector import hookimpl\n\n@hookimpl\ndef smsconnector_recieve(provider):\n    return None\n")
    install(site, "smsconnector-broken", "0.3.1", "[smsconnector]\nbroken = broken_plugin\n")

    with pytest.raises(PluginError, match="smsconnector_recieve"):
        load_plugins()


def test_plugin_configuration_error_names_plugin_and_key(example, make_app):
    with pytest.raises(PluginConfigError) as caught:
        make_app(plugins={"example": {"greeting": ""}}, migrate=False)

    assert str(caught.value) == "plugin 'example': configuration plugins.example.greeting: must be a non-empty string"
    assert (caught.value.plugin, caught.value.key, caught.value.reason) == (
        "example", "plugins.example.greeting", "must be a non-empty string")
    assert isinstance(caught.value, PluginError)  # what start-up failures were caught as before it existed


@pytest.mark.parametrize(("disabled", "message"), [
    (["nosuchplugin"], "no installed plugin is named 'nosuchplugin'"),
    (["compliance"], "'compliance' keeps consumers safe and cannot be disabled"),
])
def test_disabling_unknown_or_essential_plugins_is_a_config_error(disabled, message):
    with pytest.raises(ConfigError) as caught:
        load_plugins(disabled)

    assert caught.value.key == "plugins.disabled"
    assert message in str(caught.value)


def test_plugin_state_is_per_app(make_app):
    first = make_app(migrate=False)
    second = make_app(migrate=False)

    assert first.plugin("simulator") is not second.plugin("simulator")


def test_simulator_declines_other_providers_synchronously(make_app):
    app = make_app(migrate=False)

    assert_declines_other_providers(app.plugin("simulator"), app)


def test_the_check_catches_a_provider_that_awaits_before_declining(make_app):
    class Greedy:
        async def smsconnector_send(self, provider, message):
            return None if provider != "greedy" else "sent"

    with pytest.raises(AssertionError, match="smsconnector_send answered <coroutine"):
        assert_declines_other_providers(Greedy(), make_app(migrate=False))


def test_the_simulator_is_listed_but_off_until_enabled():
    _, infos = load_plugins()
    pm, enabled = load_plugins(enabled=["simulator"])

    assert next(i for i in infos if i.name == "simulator").enabled is False
    assert next(i for i in enabled if i.name == "simulator").enabled is True and pm.get_plugin("simulator")


def test_enabling_through_the_environment():
    config = load_config(env={"SMSCONNECTOR_PLUGINS__ENABLED": "simulator"})

    assert config.plugins.enabled == ("simulator",)
    assert App(config).plugin("simulator") is not None


@pytest.mark.parametrize(("disabled", "enabled", "message"), [
    ([], ["nosuchplugin"], "no installed plugin is named 'nosuchplugin'"),
    (["simulator"], ["simulator"], "'simulator' is in plugins.disabled too"),
])
def test_enabling_an_unknown_or_disabled_plugin_is_a_config_error(disabled, enabled, message):
    with pytest.raises(ConfigError) as caught:
        load_plugins(disabled, enabled=enabled)

    assert caught.value.key == "plugins.enabled"
    assert message in str(caught.value)
