"""The test kit of entry-point plugins: what their tests need beside ``make_app``, ``live_server`` and ``db``.

::

    from smsconnector.testing.entrypoints import alone, both_databases, delivered, snapshot, text_brand

    @both_databases
    def test_a_reply_reaches_the_skill(make_app, live_server, db):
        app = make_app(plugins={"disabled": alone("callbacks"), "callbacks": {"token": TOKEN}})
        server = live_server(app)
        ...

- running the plugin on its own (``alone``) or beside each subset of the bundled entry points
  (``beside_siblings``, ``at_work``), on SQLite and PostgreSQL (``both_databases``);
- what a consumer does (``text_brand``) and what they receive (``delivered``), with the consent the
  compliance plugin's send checks want when it is installed (``record_consent``);
- showing that a refusal changed nothing (``snapshot``; ``Refusal`` cases checked by ``assert_refused``), and
  what a wrong setting stops start-up with (``start_up_refusal``);
- the plugin as installed: ``clean_environment`` (a fixture), ``cli_listing``, ``cli_row``,
  ``schema_differences``; and ``as_json`` for JSON columns read through plain SQL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from ..cli import main
from ..errors import ConfigError, PluginError
from ..plugins import ESSENTIAL, GROUP
from .database import Database
from .fixtures import BRAND_NUMBER
from .polling import eventually
from .server import LiveServer

#: The consumer the kit's helpers text as, unless told otherwise: a US mobile number.
CONSUMER = "+14155550123"

#: ``database_url`` on SQLite and on PostgreSQL (skipped, with the reason, where no server answers).
both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

#: The entry-point plugins of this repository, each its own distribution; any subset may be installed.
ENTRY_POINT_PLUGINS = ("adkeywords", "automation", "ivr")

#: Settings that put each bundled entry-point plugin to work, for tests that run one beside the others.
AT_WORK: dict[str, dict[str, Any]] = {
    "adkeywords": {"keywords": [{"keyword": "PIZZA", "number": BRAND_NUMBER, "campaign": "spring", "reply": "Yum!"}]},
    "automation": {"token": "automation-sibling-token"},
    "ivr": {"token": "ivr-sibling-token"},
}


# -- which plugins run ------------------------------------------------------------------------------------------


def alone(mine: str, *, keep: Sequence[str] = ()) -> list[str]:
    """What to disable (``plugins={"disabled": alone("ivr")}``) so that only the host's own plugins, ``mine``,
    ``keep`` and compliance (essential, so never disabled) run, whatever else is installed."""
    return sorted(ep.name for ep in entry_points(group=GROUP)
                  if (ep.dist is None or ep.dist.name != "smsconnector")
                  and ep.name not in {mine, *keep, *ESSENTIAL})


def sibling_subsets(mine: str) -> list[tuple[str, ...]]:
    """Every subset of the other bundled entry-point plugins installed beside ``mine``, the empty one first."""
    installed = {ep.name for ep in entry_points(group=GROUP)}
    siblings = sorted(installed & set(ENTRY_POINT_PLUGINS) - {mine})
    return [subset for size in range(len(siblings) + 1) for subset in combinations(siblings, size)]


def at_work(siblings: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The configuration sections that put ``siblings`` to work."""
    return {name: AT_WORK[name] for name in siblings}


def beside_siblings(mine: str) -> pytest.MarkDecorator:
    """Parametrize ``database_url`` and ``siblings``: each subset of the other entry points on SQLite, alone on
    PostgreSQL. Build the app with ``plugins={"disabled": alone(mine, keep=siblings), **at_work(siblings)}``."""
    cases = [pytest.param("sqlite", s, id=f"sqlite-{'+'.join(s) or 'alone'}") for s in sibling_subsets(mine)]
    cases.append(pytest.param("postgres", (), id="postgres-alone"))
    return pytest.mark.parametrize(("database_url", "siblings"), cases, indirect=["database_url"])


# -- what a consumer does and gets ------------------------------------------------------------------------------


def text_brand(url: str, sid: str, text: str, *, consumer: str = CONSUMER, to: str = BRAND_NUMBER) -> httpx.Response:
    """``consumer`` texts ``text`` to the brand number ``to``, as the simulator provider's webhook ``sid``."""
    return httpx.post(f"{url}/webhooks/simulator/inbound", json={"id": sid, "from": consumer, "to": to, "text": text})


def delivered(app: Any, count: int = 1) -> list[dict[str, Any]]:
    """What the simulator was given to send, once it holds at least ``count`` messages (the sender drains the
    outbox on its own time); fails after the polling deadline."""
    simulator = app.plugin("simulator")
    return eventually(lambda: len(simulator.sent) >= count and simulator.sent)


async def record_consent(app: Any, consumer: str, brand_number: str, consent_class: str) -> None:
    """Record ``consumer``'s consent to ``consent_class`` texts as the brand would (a web form), so that the send
    checks of the compliance plugin, when it is installed, let them go; without it, nothing to do.
    Run it on the server's loop: ``server.call(lambda: record_consent(app, ...))``."""
    compliance = app.plugin("compliance")
    if compliance is None:
        return
    async with app.store.transaction() as session:
        await compliance.record(session, consumer=consumer, brand_number=brand_number, action="consent",
                                consent_class=consent_class, method="web_form", source="https://example.com/book",
                                recorded_by="admin")


# -- refusals change nothing ------------------------------------------------------------------------------------


def snapshot(db: Database, *tables: str) -> dict[str, int]:
    """Row counts of the host's tables and of ``tables`` (the plugin's): equal before and after a refusal."""
    return {**db.snapshot(), **{table: db.count(table) for table in tables}}


@dataclass(frozen=True)
class Refusal:
    """A bad request and the JSON error it must get; ``body`` and ``headers`` default to the good ones."""

    label: str
    status: int
    error: str
    #: a part of the detail the caller reads
    detail: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    #: bytes to post instead of ``body`` as JSON
    raw: bytes | None = None


def assert_refused(server: LiveServer, db: Database, path: str, cases: Sequence[Refusal], *, body: Any,
                   headers: Mapping[str, str], tables: Sequence[str] = ()) -> None:
    """Post each case to ``path`` on ``server``: each gets its status, error code and a detail holding the case's,
    and nothing is stored (the host's tables and ``tables``, the plugin's) or sent."""
    before = snapshot(db, *tables)
    seen = []
    for case in cases:
        sent = {**(headers if case.headers is None else case.headers), "content-type": "application/json"}
        if case.raw is not None:
            response = httpx.post(f"{server.url}{path}", content=case.raw, headers=sent)
        else:
            response = httpx.post(f"{server.url}{path}", json=body if case.body is None else case.body, headers=sent)
        answer = response.json()
        seen.append((case.label, response.status_code, answer["error"],
                     case.detail in answer["detail"] or answer["detail"]))
    assert seen == [(case.label, case.status, case.error, True) for case in cases]
    assert snapshot(db, *tables) == before
    assert server.app.plugin("simulator").sent == []


def start_up_refusal(make_app: Callable[..., Any], name: str, settings: Mapping[str, Any], **options: Any
                     ) -> ConfigError:
    """What stops an app with the plugin ``name`` (alone) and ``settings`` as its section from starting: a
    :class:`PluginError` naming the plugin, caused by the :class:`ConfigError` returned (its ``key`` and
    ``reason``). ``options`` go to ``make_app`` (``register=[...]``). Fails the test if the app starts."""
    with pytest.raises(PluginError) as stopped:
        make_app(plugins={"disabled": alone(name), name: settings}, migrate=False, **options)
    assert stopped.value.plugin == name
    assert isinstance(stopped.value.__cause__, ConfigError)
    return stopped.value.__cause__


# -- the plugin as installed ------------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No configuration but what the test sets: no ``SMSCONNECTOR_*`` variables, no ``./smsconnector.toml``."""
    for name in [n for n in os.environ if n.startswith("SMSCONNECTOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield monkeypatch


def cli_listing(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """What ``smsconnector plugins --json`` says of the plugin ``name``."""
    assert main(["plugins", "--json"]) == 0
    [listed] = [p for p in json.loads(capsys.readouterr().out) if p["name"] == name]
    return listed


def cli_row(name: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The words of the plugin ``name``'s row in ``smsconnector plugins``: name, distribution, version, enabled..."""
    assert main(["plugins"]) == 0
    [row] = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(f"{name} ")]
    return row


def schema_differences(db: Database, table: str) -> list[Any]:
    """Where the migrated database and the models disagree about ``table``: none, once the migrations are right."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    return [d for d in diff if table in repr(d)]


def as_json(value: Any) -> Any:
    """A JSON column as read through plain SQL: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
