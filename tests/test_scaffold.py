"""``smsconnector new-provider``: a provider plugin that installs, is listed, and runs the contract suite, failing
only where its author has to write something."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smsconnector.cli import main

from .processes import command_env

#: the contract tests that need what only the author can write (the provider's webhooks and statuses)
NEEDS_THE_AUTHOR = {
    "test_a_signed_inbound_message_retried_is_stored_once",
    "test_every_forgery_is_refused_and_stores_nothing",
    "test_hostile_bodies_get_2xx_or_4xx_and_a_refusal_stores_nothing",
    "test_every_receipt_status_maps_to_its_delivery_status",
    "test_a_status_never_moves_back",
    "test_logs_never_contain_a_message_body",
}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def fresh_environment(where: Path) -> Path:
    """A new virtual environment that sees this one's packages (the host, its dependencies, the build backend)
    but installs into its own: its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir, not a bare path: this environment's own .pth files (the editable host) must be read too.
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "parent-environment.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_the_generated_plugin_installs_is_listed_and_fails_its_contract_only_on_the_authors_todos(tmp_path, capsys):
    plugin = tmp_path / "acme"

    assert main(["new-provider", "acme", "--directory", str(plugin)]) == 0
    assert f"smsconnector-acme in {plugin}" in capsys.readouterr().out

    python = fresh_environment(tmp_path / "venv")
    env = command_env(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(plugin)],
        check=True,
        capture_output=True,
        env=env,
    )
    listed = subprocess.run(
        [str(python), "-m", "smsconnector.cli", "plugins", "--json"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    acme = {p["name"]: p for p in json.loads(listed.stdout)}["acme"]
    assert (acme["distribution"], acme["enabled"]) == ("smsconnector-acme", True)
    assert {"smsconnector_receive", "smsconnector_normalize", "smsconnector_send"} <= set(acme["hooks"])

    # SQLite only, to stay quick: the PostgreSQL half runs the same tests.
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-k", "sqlite", f"--junitxml={report}"],
        cwd=plugin,
        env=env,
        capture_output=True,
        text=True,
    )

    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test = case.get("name", "").removesuffix("[sqlite]")
        [outcome] = [(child.tag, child.get("message", "")) for child in case if child.tag != "system-out"] or [
            ("passed", "")
        ]
        outcomes[test] = outcome
    assert [t for t, (kind, _) in outcomes.items() if kind == "error"] == [], outcomes  # imports, fixtures
    failed = {t: message for t, (kind, message) in outcomes.items() if kind == "failure"}
    assert set(failed) == NEEDS_THE_AUTHOR, outcomes
    assert all(message.startswith("NotImplementedError: TODO: ") for message in failed.values()), failed
    passed = {t for t, (kind, _) in outcomes.items() if kind == "passed"}
    assert {
        "test_other_providers_are_declined_synchronously",
        "test_a_proxy_named_in_the_environment_carries_the_sends",
        "test_no_proxy_exempts_the_api_host",
        "test_a_send_error_is_retried_or_recorded_as_its_class_says",
    } <= {t.partition("[")[0] for t in passed}


def test_the_plugins_own_modules_import_only_the_public_plugin_api(tmp_path):
    plugin = new_provider_at(tmp_path / "acme_sms")

    for module in ("__init__", "hooks"):
        tree = ast.parse((plugin / "src" / "smsconnector_acme_sms" / f"{module}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert {m for m in imported if m.startswith("smsconnector")} <= {"smsconnector.plugin"}, (module, imported)
    pyproject = (plugin / "pyproject.toml").read_text()
    assert 'name = "smsconnector-acme_sms"' in pyproject
    assert 'acme_sms = "smsconnector_acme_sms.hooks:AcmeSms"' in pyproject
    assert (plugin / "src" / "smsconnector_acme_sms" / "py.typed").exists()
    assert (plugin / "tests" / "test_acme_sms_contract.py").exists()


def new_provider_at(directory: Path) -> Path:
    assert main(["new-provider", directory.name, "--directory", str(directory)]) == 0
    return directory


@pytest.mark.parametrize("name", ["acme-sms", "1acme", "Acme", "_acme", "café", "acme sms", ""])
def test_a_name_that_is_not_a_lowercase_identifier_is_refused_and_nothing_is_written(
    name, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    assert main(["new-provider", name]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: provider name {name!r} must be a lower-case Python identifier"), err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_refused_and_left_as_it_was(tmp_path, capsys):
    taken = tmp_path / "acme"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    before = files(tmp_path)

    assert main(["new-provider", "acme", "--directory", str(taken)]) == 2

    assert (
        capsys.readouterr().err == f"error: {taken} already exists: choose another --directory, nothing was written\n"
    )
    assert files(tmp_path) == before


def test_a_missing_parent_directory_is_refused_and_nothing_is_written(tmp_path, capsys):
    assert main(["new-provider", "acme", "--directory", str(tmp_path / "no" / "acme")]) == 2

    assert "is not a directory: create it first, nothing was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
