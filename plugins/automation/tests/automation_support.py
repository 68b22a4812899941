"""Helpers for the automation plugin's tests."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from itertools import combinations
from typing import Any, TypeVar

import pytest

from smsconnector.plugins import ESSENTIAL, GROUP
from smsconnector.testing import BRAND_NUMBER, Database

T = TypeVar("T")

TOKEN = "automation-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONSUMER = "+14155550123"
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

#: The entry-point plugins of this repository, each its own distribution; any subset may be installed.
ENTRY_POINT_PLUGINS = ("adkeywords", "automation", "ivr")


#: Settings that put each entry-point plugin to work, for tests that run one beside the others.
AT_WORK: dict[str, dict[str, Any]] = {
    "adkeywords": {"keywords": [{"keyword": "PIZZA", "number": BRAND_NUMBER, "campaign": "spring", "reply": "Yum!"}]},
    "automation": {"token": "automation-sibling-token"},
    "ivr": {"token": "ivr-sibling-token"},
}


def installed() -> set[str]:
    return {ep.name for ep in entry_points(group=GROUP)}


def alone(mine: str, *, keep: tuple[str, ...] = ()) -> list[str]:
    """What to disable so that only the host's own plugins, ``mine``, ``keep`` and compliance (essential) run."""
    return sorted(ep.name for ep in entry_points(group=GROUP)
                  if (ep.dist is None or ep.dist.name != "smsconnector")
                  and ep.name not in {mine, *keep, *ESSENTIAL})


def sibling_subsets(mine: str) -> list[tuple[str, ...]]:
    """Every subset of the other entry-point plugins installed beside ``mine``, the empty one first."""
    siblings = sorted(installed() & set(ENTRY_POINT_PLUGINS) - {mine})
    return [subset for size in range(len(siblings) + 1) for subset in combinations(siblings, size)]


def at_work(siblings: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The sections that configure ``siblings``."""
    return {name: AT_WORK[name] for name in siblings}


def subset_id(subset: tuple[str, ...]) -> str:
    return "+".join(subset) or "alone"


def beside_siblings(mine: str) -> pytest.MarkDecorator:
    """``database_url`` and ``siblings``: each subset of the other plugins on SQLite, alone on PostgreSQL."""
    cases = [pytest.param("sqlite", s, id=f"sqlite-{subset_id(s)}") for s in sibling_subsets(mine)]
    cases.append(pytest.param("postgres", (), id="postgres-alone"))
    return pytest.mark.parametrize(("database_url", "siblings"), cases, indirect=["database_url"])



def snapshot(db: Database) -> dict[str, int]:
    """Row counts of the host's tables and this plugin's."""
    return {**db.snapshot(), "automation_sends": db.count("automation_sends")}


def as_json(value: Any) -> Any:
    """A JSON column as read through plain SQL: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


async def record_consent(app: Any, consumer: str, brand_number: str, consent_class: str) -> None:
    """Record the consumer's consent as the brand would, when the compliance plugin (and its send gate) is installed."""
    compliance = app.plugin("compliance")
    if compliance is None:
        return
    async with app.store.transaction() as session:
        await compliance.record(session, consumer=consumer, brand_number=brand_number, action="consent",
                                consent_class=consent_class, method="web_form", source="https://example.com/book",
                                recorded_by="admin")
