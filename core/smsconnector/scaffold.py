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


def _files(name: str) -> dict[str, str]:
    """Each file of the skeleton, by its path in the distribution."""
    title = "".join(part.capitalize() for part in name.split("_") if part)
    values = {"name": name, "Class": title, "host_requirement": _host_requirement()}
    package = f"src/smsconnector_{name}"
    return {
        "pyproject.toml": Template(_PYPROJECT).substitute(values),
        "README.md": Template(_README).substitute(values),
        f"{package}/__init__.py": Template(_INIT).substitute(values),
        f"{package}/hooks.py": Template(_HOOKS).substitute(values),
        f"{package}/fake.py": Template(_FAKE).substitute(values),
        f"{package}/py.typed": "",
        "tests/conftest.py": Template(_CONFTEST).substitute(values),
        f"tests/test_{name}_contract.py": Template(_CONTRACT).substitute(values),
    }


def _host_requirement() -> str:
    """The host releases the plugin is written against: this one's minor version, as the bundled plugins pin."""
    major, minor = (importlib.metadata.version("smsconnector").split(".") + ["0"])[:2]
    return f"smsconnector>={major}.{minor},<{major}.{int(minor) + 1}"


_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "smsconnector-$name"
version = "0.1.0"
description = "$Class for smsconnector: receive its webhooks, send through its API, apply its receipts."
readme = "README.md"
requires-python = ">=3.11"
dependencies = [
  "$host_requirement",
  "httpx>=0.27",      # the API client
  "pydantic>=2",      # the settings
  "starlette>=0.40",  # the fake $Class, for tests
]

[project.entry-points.smsconnector]
$name = "smsconnector_$name.hooks:$Class"

[tool.hatch.build.targets.wheel]
packages = ["src/smsconnector_$name"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = ["--strict-markers", "--strict-config", "-ra"]
xfail_strict = true
filterwarnings = ["error"]
"""

_README = """\
# smsconnector-$name

$Class as an smsconnector provider: its webhooks arrive at `/webhooks/$name/inbound` and
`/webhooks/$name/status`, and replies go out through its API.

Made by `smsconnector new-provider $name`. What is left to write raises `NotImplementedError` with a sentence
saying what: receiving and normalizing in `src/smsconnector_$name/hooks.py`, the real API in its send and in
`fake.py`, and the provider's statuses and webhooks in `tests/test_${name}_contract.py`. The host's guide,
"Writing a provider plugin", walks through each in order.

## Install and configure

```
pip install -e .
smsconnector plugins          # lists $name
```

```toml
[plugins.$name]
api_base_url = "https://api.example.com"
api_key = "..."
```

## Test

```
pytest
```

runs the provider contract suite against the plugin and its fake, on SQLite and PostgreSQL. Until the adapter
and the hooks are written, the tests that need them fail naming the method to write.
"""

_INIT = '''\
"""$Class for smsconnector: receives its webhooks and sends through its API.

:mod:`smsconnector_$name.fake` is a stand-in $Class on loopback for tests.
"""

from .hooks import $Class

__all__ = ["$Class"]
'''

_HOOKS = '''\
"""The $name provider: its hook implementations.

Every hook declines other providers synchronously (``if provider != NAME: return None``), before making a
coroutine, which would otherwise win the first-result race for every provider. The send speaks to a made-up
JSON API, the one ``fake.py`` serves: change both to $Class's own.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx
from pydantic import BaseModel

from smsconnector.plugin import (
    App,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Received,
    RetryableSendError,
    SegmentPolicy,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    environment_proxy,
    hookimpl,
    plugin_settings,
)

NAME = "$name"
#: where a send is posted, below ``api_base_url``
SEND_PATH = "/messages"
#: HTTP statuses the API may answer differently later: timeouts, rate limits, its own failures
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


class Settings(BaseModel):
    """``[plugins.$name]``."""

    api_base_url: str = "https://api.example.com"
    api_key: str = ""


class $Class:
    """One per app: the settings and the pooled HTTP client."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.client: httpx.AsyncClient | None = None

    @hookimpl
    def smsconnector_configure(self, app: App) -> None:
        """Read and check ``[plugins.$name]``."""
        self.settings = plugin_settings(app.config, NAME, Settings)

    @hookimpl
    async def smsconnector_startup(self) -> None:
        """Open the HTTP client in the event loop that sends, through the proxy the environment names."""
        self.client = httpx.AsyncClient(
            base_url=self.settings.api_base_url,
            headers={"Authorization": f"Bearer {self.settings.api_key}"},
            proxy=environment_proxy(self.settings.api_base_url),
            trust_env=False,  # the proxy is read once, above
            timeout=10,
        )

    @hookimpl
    async def smsconnector_shutdown(self) -> None:
        """Close the HTTP client."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @hookimpl
    def smsconnector_receive(self, provider: str, request: WebhookRequest) -> Received | None:
        """Authenticate a webhook of $Class and take its events."""
        if provider != NAME:
            return None
        raise NotImplementedError(
            "TODO: authenticate the request (raise Forbidden for a bad signature, Unauthenticated for bad "
            "credentials) and return Received(events) with the raw events its body carries"
        )

    @hookimpl
    def smsconnector_normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate | None:
        """A raw event as an inbound message or a status update."""
        if provider != NAME:
            return None
        raise NotImplementedError(
            "TODO: turn one raw event into an InboundMessage (E.164 numbers, text, media, SegmentInfo for a part) "
            "or a StatusUpdate (its DeliveryStatus and error code)"
        )

    @hookimpl
    def smsconnector_segment_policy(self, provider: str) -> SegmentPolicy | None:
        """What a part of a long message becomes: as it came, for a provider that joins the parts itself."""
        return SegmentPolicy.AS_IS if provider == NAME else None

    @hookimpl
    def smsconnector_send(self, provider: str, message: OutboundMessage) -> Awaitable[SendResult] | None:
        """Send ``message`` through the API."""
        if provider != NAME:
            return None
        return self._send(message)

    async def _send(self, message: OutboundMessage) -> SendResult:
        assert self.client is not None, "the plugin was not started"
        body = {
            "from": message.from_number,
            "to": message.to_number,
            "text": message.text,
            "reference": str(message.id),
        }
        try:
            response = await self.client.post(SEND_PATH, json=body)
        except httpx.TimeoutException as exc:
            raise RetryableSendError("the API did not answer in time", code="timeout", maybe_accepted=True) from exc
        except httpx.HTTPError as exc:
            raise RetryableSendError(f"the API could not be reached: {type(exc).__name__}", code="network") from exc
        if response.status_code in RETRYABLE:
            raise RetryableSendError(f"the API answered {response.status_code}", code=str(response.status_code))
        if response.status_code >= 400:
            raise PermanentSendError(
                f"the API refused the message ({response.status_code})", code=str(response.status_code)
            )
        return SendResult(str(response.json()["id"]))
'''

_FAKE = '''\
"""A stand-in $Class on loopback, over real HTTP, for the plugin's tests.

It serves the made-up send endpoint the plugin's send speaks to; make it answer as $Class's API does, from
its documentation, and add what the plugin's tests need to post as $Class (inbound messages, receipts).
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.testing.fake import FakeProvider, Recorded

from .hooks import SEND_PATH

API_KEY = "fake-api-key"


class Fake$Class(FakeProvider):
    """$Class's API as far as the plugin uses it: requests recorded, 429/5xx and stalls scripted."""

    def __init__(self, *, api_key: str = API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        super().__init__(host=host, port=port)

    def endpoints(self) -> list[Route]:
        """The send endpoint."""
        return [Route(SEND_PATH, self._send_message, methods=["POST"])]

    def refuse(self, request: Request) -> Response | None:
        """401 for a request without the API key."""
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
            return None
        return JSONResponse({"error": "unauthorized"}, status_code=401)

    def plugin_config(self, **overrides: Any) -> dict[str, Any]:
        """``[plugins.$name]`` for a host that sends to this fake."""
        return {"api_base_url": self.url, "api_key": self.api_key, **overrides}

    def sends(self) -> list[Recorded]:
        """Every send request received, accepted or refused."""
        return [r for r in self.requests if r.path == SEND_PATH]

    async def _send_message(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"id": uuid.uuid4().hex}, status_code=201)
'''

_CONFTEST = '''\
"""The host's test fixtures (make_app, live_server, db...), which the contract suite uses."""

pytest_plugins = ["smsconnector.testing"]
'''

_CONTRACT = '''\
"""$Class runs the provider contract suite, over real HTTP against its fake, on SQLite and PostgreSQL.

The adapter methods that raise NotImplementedError are yours to write; until then, each test that needs one
fails saying which and what it should return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from smsconnector.plugin import DeliveryStatus
from smsconnector.testing.contract import CONSUMER, ProviderContract, ProviderContractTests, SendFailure, Webhook
from smsconnector_$name.fake import Fake$Class


class ${Class}Contract(ProviderContract):
    """$Class, as the contract suite drives it."""

    name = "$name"
    brand_number = "+14155550100"
    #: the fake's answers to a send, by HTTP status, and what the host must make of each: make them $Class's
    send_errors = {
        "429": SendFailure("retried", "429"),
        "503": SendFailure("retried", "503"),
        "400": SendFailure("permanent", "400"),
    }
    loggers = ("smsconnector_$name",)

    @property
    def status_table(self) -> Mapping[str, DeliveryStatus]:  # type: ignore[override]
        """Replace with a dict: every status $Class reports in a receipt, in its terms, to a DeliveryStatus."""
        raise NotImplementedError(
            "TODO: status_table: map every status $Class reports in a receipt, in its own terms, to a DeliveryStatus"
        )

    def start_fake(self) -> Fake$Class:
        return Fake$Class().start()

    def stop_fake(self, fake: Fake$Class) -> None:
        fake.stop()

    def plugin_config(self, fake: Fake$Class) -> dict[str, Any]:
        return fake.plugin_config()

    def fail_next_send(self, fake: Fake$Class, error: str, *, to: str) -> None:
        fake.respond_next(int(error))

    def send_attempts(self, fake: Fake$Class) -> int:
        return len(fake.sends())

    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        raise NotImplementedError(
            "TODO: signed_inbound: return Webhook('inbound', body, headers), the message $Class would post, "
            "authenticated as $Class does it"
        )

    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        raise NotImplementedError(
            "TODO: forgeries: return forged twins of the webhook by label (unsigned, wrong signature, body "
            "changed), each of which the plugin must refuse with 401 or 403"
        )

    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        raise NotImplementedError(
            "TODO: receipt: return Webhook('status', body, headers), $Class's authenticated receipt reporting "
            "status (a key of status_table) on the message it accepted as provider_message_id"
        )

    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        raise NotImplementedError(
            "TODO: hostile_webhooks: return a hypothesis strategy of authenticated webhooks with hostile bodies, "
            "built with smsconnector.testing.hostile (form_bodies or json_bodies)"
        )


class Test${Class}Contract(ProviderContractTests):
    contract = ${Class}Contract()
'''
