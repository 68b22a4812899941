"""The plugin API (``smsconnector.plugin``) and its page (docs/plugin-api.md) say the same, name for name."""

from __future__ import annotations

import ast
import dataclasses
import enum
import re
from pathlib import Path

import pytest

from smsconnector import plugin
from smsconnector.messages import DeliveryStatus

PAGE = (Path(__file__).parents[1] / "docs" / "plugin-api.md").read_text()
EXPORTED = sorted(plugin.__all__)
DATACLASSES = [name for name in EXPORTED if dataclasses.is_dataclass(getattr(plugin, name))]
ENUMS = [name for name in EXPORTED if isinstance(getattr(plugin, name), enum.EnumMeta)]


def section(name: str) -> str:
    """The text under the heading ``### `name```, up to the next heading."""
    found = re.search(rf"^### `{re.escape(name)}`\n(.*?)(?=^#)", PAGE + "\n#", flags=re.M | re.S)
    assert found, f"docs/plugin-api.md has no section ### `{name}`"
    return found.group(1)


def rows(text: str) -> dict[str, list[str]]:
    """A section's table, by the backquoted name in each row's first cell: the row's other cells."""
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and (first := re.fullmatch(r"`([^`]+)`", cells[0])):
            table[first.group(1)] = cells[1:]
    return table


def test_every_exported_name_exists():
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None
    assert len(set(plugin.__all__)) == len(plugin.__all__)


@pytest.mark.parametrize("name", EXPORTED)
def test_every_exported_name_is_documented(name):
    headed = re.search(rf"^### `{re.escape(name)}`$", PAGE, flags=re.M)
    assert headed or name in rows(PAGE), f"docs/plugin-api.md documents no `{name}` (a section or a table row)"


def test_the_page_documents_nothing_the_module_does_not_export():
    headed = set(re.findall(r"^### `(\w+)`$", PAGE, flags=re.M))
    assert headed <= set(plugin.__all__)


@pytest.mark.parametrize("name", DATACLASSES)
def test_every_field_of_a_message_type_is_in_its_table_with_its_type(name):
    cls = getattr(plugin, name)
    documented = rows(section(name))

    assert list(documented) == [f.name for f in dataclasses.fields(cls)], f"{name}'s table lists other fields"
    for f in dataclasses.fields(cls):
        written = documented[f.name][0].replace("\\|", "|").strip("`").replace('"', "'")
        assert written == str(f.type), f"{name}.{f.name} is {f.type}, the page says {written}"
        assert documented[f.name][1], f"{name}.{f.name} has no meaning on the page"


@pytest.mark.parametrize("name", ENUMS)
def test_every_value_of_an_enumeration_is_listed(name):
    listed = rows(section(name))

    assert list(listed) == [member.value for member in getattr(plugin, name)]
    assert all(cells[-1] for cells in listed.values()), f"a value of {name} has no meaning on the page"


def test_every_delivery_status_is_listed_with_its_rank_and_whether_it_is_terminal():
    listed = rows(section("DeliveryStatus"))

    for status in DeliveryStatus:
        rank, terminal, _ = listed[status.value]
        assert (int(rank), terminal == "yes") == (status.rank, status.terminal), status


def test_bundled_plugins_take_what_the_plugin_api_exports_from_it():
    # A bundled plugin that reaches into a host module for a name the API exports shows authors the wrong way.
    root = Path(__file__).parents[1]
    sources = [*root.glob("plugins/*/src/smsconnector_*/*.py"), *root.glob("core/smsconnector/builtins/*.py")]
    elsewhere = [
        f"{source.relative_to(root)}: {alias.name} from {node.module}"
        for source in sources
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[0] == "smsconnector"
        and node.module != "smsconnector.plugin"
        for alias in node.names
        if alias.name in plugin.__all__
    ]
    assert elsewhere == []
