"""``smsconnector new-provider``: the skeleton of a provider plugin distribution, ready to fill in.

The skeleton installs, registers, and runs the provider contract suite at once: sending to a made-up JSON API
(the one its fake serves) works, and what only the provider's author can write -- receiving, normalizing, the
provider's statuses and webhooks in the contract adapter -- raises ``NotImplementedError`` with a sentence
saying what to write, so each contract test fails on exactly that until it is written.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from string import Template

from .errors import SmsConnectorError


class ScaffoldError(SmsConnectorError):
    """The skeleton cannot be written (a bad name, a directory already there); nothing was written."""


def check_name(name: str) -> None:
    """Refuse a provider name that cannot be a module name, an entry point and a webhook path segment alike.

    :raises ScaffoldError: ``name`` is not a lower-case ASCII Python identifier.
    """
    if not (name.isascii() and name.isidentifier() and name == name.lower() and not name.startswith("_")):
        raise ScaffoldError(
            f"provider name {name!r} must be a lower-case Python identifier (letters, digits and underscores, "
            "not starting with a digit or an underscore): it names the module smsconnector_<name>, the entry "
            "point and the webhook paths"
        )


def new_provider(name: str, directory: Path | None = None) -> Path:
    """Write the distribution ``smsconnector-<name>`` into ``directory`` (``./smsconnector-<name>`` by default)
    and return where it is.

    The files are written beside the target first and moved into place at the end, so a failure leaves nothing.

    :raises ScaffoldError: the name is refused (:func:`check_name`), ``directory`` exists, or its parent does not.
    """
    check_name(name)
    target = Path(directory) if directory is not None else Path(f"smsconnector-{name}")
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another --directory, nothing was written")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise ScaffoldError(f"{parent} is not a directory: create it first, nothing was written")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        staging.chmod(0o755)  # mkdtemp's is private to its owner; a project directory is not
        for relative, text in _files(name).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.rename(staging, target)  # refuses, rather than merges, if the target appeared meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


#: each file of the skeleton, by its path in the distribution (``NAME`` the provider's), and its template in
#: ``provider_template/``, where ``$name``, ``$Class`` and ``$host_requirement`` are filled in
_TEMPLATES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/smsconnector_NAME/__init__.py": "__init__.py.tmpl",
    "src/smsconnector_NAME/hooks.py": "hooks.py.tmpl",
    "src/smsconnector_NAME/fake.py": "fake.py.tmpl",
    "src/smsconnector_NAME/py.typed": None,
    "tests/conftest.py": "conftest.py.tmpl",
    "tests/test_NAME_contract.py": "test_contract.py.tmpl",
}


def _files(name: str) -> dict[str, str]:
    """Each file of the skeleton, by its path in the distribution."""
    values = {
        "name": name,
        "Class": "".join(part.capitalize() for part in name.split("_") if part),
        "host_requirement": _host_requirement(),
    }
    templates = resources.files("smsconnector") / "provider_template"
    return {
        path.replace("NAME", name): Template((templates / template).read_text(encoding="utf-8")).substitute(values)
        if template
        else ""
        for path, template in _TEMPLATES.items()
    }


def _host_requirement() -> str:
    """The host releases the plugin is written against: this one's minor version, as the bundled plugins pin."""
    major, minor = (importlib.metadata.version("smsconnector").split(".") + ["0"])[:2]
    return f"smsconnector>={major}.{minor},<{major}.{int(minor) + 1}"
