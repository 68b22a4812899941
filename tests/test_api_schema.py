"""schemathesis against the live API: generated requests, valid and invalid, over real HTTP with an admin token.

No response may be a server error or contradict /openapi.json (status, content type, body, headers), and
every invalid request must be refused. ``/api/events`` is left out: it is a stream that never ends by
design; the SSE tests cover it.
"""

from __future__ import annotations

from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .api_support import ADMIN_TOKEN, Desk, api_app, bearer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 8  #: per operation and mode: enough to reach every refusal, small enough to stay fast
NOT_FUZZED = {"/api/events"}


def test_the_live_api_keeps_to_its_openapi_document(make_app, live_server):
    server = live_server(api_app(make_app))
    desk = Desk(server)
    desk.agent("Ana")
    desk.text("c1")  # a conversation and an agent exist, so some generated ids name something
    desk.close()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")

    http = requests.Session()  # one connection pool for every generated request
    failures: list[str] = []
    exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in NOT_FUZZED:
            continue
        for mode, checks in ((GenerationMode.POSITIVE, CHECKS),
                             (GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection])):
            try:
                _fuzz(operation, mode, checks, server.url, http)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # takes no input: nothing invalid to send
            except Exception as exc:  # noqa: BLE001  (one report per operation and mode: every problem at once)
                failures.append(f"{operation.label} ({mode.value}): {exc}")
            exercised += 1
    http.close()
    assert failures == []
    assert exercised >= 2 * 17


def _fuzz(operation: Any, mode: GenerationMode, checks: list[Any], base_url: str, http: requests.Session) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        # A generated Content-Length tests the HTTP server, which refuses a broken one before the app sees it.
        for name in [n for n in case.headers or {} if n.lower() == "content-length"]:
            del case.headers[name]
        case.call_and_validate(base_url=base_url, session=http, headers=bearer(ADMIN_TOKEN), checks=checks)

    run()
