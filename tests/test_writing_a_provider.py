"""docs/writing-a-provider.md stays true to the code: its examples import what exists, implement real hooks with
their real arguments, and its contract adapter writes every method the suite requires."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from smsconnector import hookspecs, plugin
from smsconnector.testing.contract import ProviderContract

PAGE = (Path(__file__).parents[1] / "docs" / "writing-a-provider.md").read_text()
BLOCKS = [ast.parse(code) for code in re.findall(r"^```python\n(.*?)^```", PAGE, flags=re.M | re.S)]


def nodes(kind: type[ast.AST]) -> list:
    return [node for tree in BLOCKS for node in ast.walk(tree) if isinstance(node, kind)]


def test_the_page_has_examples():
    assert len(BLOCKS) >= 8


def test_examples_import_the_host_only_through_its_plugin_api_and_testing_kit():
    imports = [(n.module, alias.name) for n in nodes(ast.ImportFrom) if n.module for alias in n.names]
    imports += [(alias.name, None) for n in nodes(ast.Import) for alias in n.names]
    host = [
        (module, name) for module, name in imports if module == "smsconnector" or module.startswith("smsconnector.")
    ]
    assert host, "no example imports the host"

    for module, name in host:
        assert module == "smsconnector.plugin" or module.startswith("smsconnector.testing"), module
        if module == "smsconnector.plugin":
            assert name in plugin.__all__, f"smsconnector.plugin exports no {name}"
        elif name is not None:
            assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"


def hook_definitions() -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    defined = nodes(ast.FunctionDef) + nodes(ast.AsyncFunctionDef)
    return [d for d in defined if d.name.startswith("smsconnector_")]


def test_every_hook_an_example_implements_exists_and_takes_only_its_arguments():
    definitions = hook_definitions()
    assert len(definitions) >= 6

    for definition in definitions:
        spec = getattr(hookspecs, definition.name, None)
        assert spec is not None, f"{definition.name} is not a hook"
        taken = [a.arg for a in definition.args.args if a.arg != "self"]
        assert set(taken) <= set(inspect.signature(spec).parameters), (definition.name, taken)


def test_the_contract_adapter_writes_every_method_the_suite_requires():
    written = {d.name for d in nodes(ast.FunctionDef)}

    assert set(ProviderContract.__abstractmethods__) <= written
    assert "part_receipt" in written
