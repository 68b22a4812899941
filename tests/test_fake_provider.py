"""``FakeProvider``, the base of a provider's fake API: requests recorded, failures and stalls scripted, served
where it is told."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconnector.testing.fake import FakeProvider, Recorded

from .processes import free_port


class FakeAcme(FakeProvider):
    """A provider that takes a message with a bearer token and answers its id."""

    def endpoints(self) -> list[Route]:
        return [Route("/v1/messages", self.send_message, methods=["POST"])]

    def refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == "Bearer good":
            return None
        return JSONResponse({"error": "who are you"}, status_code=401)

    async def send_message(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"id": f"AC{len(self.requests) + 1}"}, status_code=201)


@pytest.fixture
def fake():
    with FakeAcme() as server:
        yield server


def send(fake: FakeProvider, text: str, *, token: str = "good", timeout: float = 5.0) -> httpx.Response:
    return httpx.post(
        f"{fake.url}/v1/messages", json={"text": text}, timeout=timeout, headers={"authorization": f"Bearer {token}"}
    )


def test_every_request_is_recorded_with_what_it_was_answered(fake):
    answers = [send(fake, "one"), send(fake, "two", token="bad")]

    assert [a.status_code for a in answers] == [201, 401]
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("POST", "/v1/messages", 201),
        ("POST", "/v1/messages", 401),
    ]
    assert fake.requests[0].json() == {"text": "one"}
    assert fake.requests[1].headers["authorization"] == "Bearer bad"


def test_scripted_failures_answer_the_next_requests_in_order_then_the_endpoint_does(fake):
    fake.respond_next(429, json={"error": "slow down"}, headers={"Retry-After": "2"})
    fake.respond_next(503, body=b"down for maintenance", times=2)

    answers = [send(fake, str(n)) for n in range(4)]

    assert [a.status_code for a in answers] == [429, 503, 503, 201]
    assert (answers[0].json(), answers[0].headers["retry-after"]) == ({"error": "slow down"}, "2")
    assert answers[1].content == b"down for maintenance"


def test_a_refused_request_does_not_use_up_the_script(fake):
    fake.respond_next(500)

    assert [send(fake, "x", token="bad").status_code, send(fake, "x").status_code] == [401, 500]


def test_a_stall_makes_a_client_time_out_and_the_next_request_is_answered(fake):
    fake.stall_next(1.0)

    with pytest.raises(httpx.ReadTimeout):
        send(fake, "slow", timeout=0.2)
    assert send(fake, "fast").status_code == 201


def test_a_fake_listens_on_the_port_it_is_given():
    port = free_port()

    with FakeAcme(port=port) as fake:
        assert fake.url == f"http://127.0.0.1:{port}"
        assert send(fake, "hi").status_code == 201


def test_a_request_is_recorded_with_its_query_and_when_it_arrived(fake):
    before = time.monotonic()

    httpx.post(f"{fake.url}/v1/messages?to=%2B1415&to=x", json={}, headers={"authorization": "Bearer good"})

    [recorded] = fake.requests
    assert recorded.query == (("to", "+1415"), ("to", "x"))
    assert before <= recorded.arrived <= time.monotonic()


def test_reset_forgets_the_requests_and_the_answers_not_yet_given(fake):
    send(fake, "before")
    fake.respond_next(500)

    fake.reset()

    assert fake.requests == []
    assert send(fake, "after").status_code == 201


class FakeWithAClient(FakeAcme):
    """Holds something while it serves, and keeps requests as its own record type."""

    class Sent(Recorded):
        @property
        def text(self) -> str:
            return str(self.json()["text"])

    recorded_as = Sent

    def __init__(self) -> None:
        self.lifetime: list[str] = []
        super().__init__()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.lifetime.append("opened")
        yield
        self.lifetime.append("closed")


def test_the_lifespan_spans_the_serving_and_call_runs_in_the_fakes_loop():
    fake = FakeWithAClient()
    with pytest.raises(RuntimeError, match="start"):
        fake.call(lambda: asyncio.sleep(0))

    with fake:
        send(fake, "hello")

        async def running() -> bool:
            return asyncio.get_running_loop().is_running()

        assert fake.call(running) is True
        assert fake.lifetime == ["opened"]
        assert [r.text for r in fake.requests] == ["hello"]

    assert fake.lifetime == ["opened", "closed"]
