"""The provider contract suite: the promises every provider plugin keeps, checked over real HTTP on both databases.

A provider's author describes the provider once, in a :class:`ProviderContract`, and gets the suite by
subclassing :class:`ProviderContractTests` in a test module::

    from smsconnector.testing.contract import ProviderContract, ProviderContractTests

    class AcmeContract(ProviderContract):
        name = "acme"
        ...

    class TestAcmeContract(ProviderContractTests):
        contract = AcmeContract()

Every test runs on SQLite and on PostgreSQL (skipped, with the reason, where no server answers). The host is
served by ``live_server`` and the provider's fake on loopback; what a test asserts, it reads in the database.
"""

from __future__ import annotations

import abc
import concurrent.futures
import itertools
import logging
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .. import outbound
from ..app import App
from ..decisions import ConsentSignal
from ..messages import DeliveryStatus
from ..plugins import hookimpl
from .checks import assert_declines_other_providers
from .database import Database
from .hostile import assert_kept_its_promise
from .polling import eventually
from .proxy import RecordingProxy
from .server import LiveServer

#: The public URL the suite's apps are configured with: what a provider signs.
PUBLIC_URL = "http://testserver"
#: The consumer the suite's messages come from and go to.
CONSUMER = "+14155550123"

SendOutcome = Literal["retried", "permanent", "opted_out"]
PartReceipts = Literal["whole", "part_ids", "segments"]


@dataclass(frozen=True, slots=True)
class Webhook:
    """A request the provider makes to the host: to ``/webhooks/<provider>/<kind>``, with its body and headers."""

    kind: Literal["inbound", "status"]
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendFailure:
    """What the host must make of one of the provider's send errors.

    ``retried``: sent again until accepted; ``permanent``: failed at once with ``code`` kept for the agent;
    ``opted_out``: failed like a permanent one, and reported as the consumer's opt-out.
    """

    outcome: SendOutcome
    code: str


@dataclass(frozen=True, slots=True)
class SentPart:
    """One part of a long message the provider accepted, as a receipt on that part names it.

    ``message_id`` is the id the provider accepted the message under (``SendResult.provider_message_id``);
    ``part_id`` the part's own id, for a provider that ids each part (``SendResult.of_parts``), else ``None``;
    ``sequence`` the part's number, from 1 to ``total``.
    """

    message_id: str
    part_id: str | None
    sequence: int
    total: int


class ProviderContract(abc.ABC):
    """What the contract suite needs to know about a provider; a plugin's tests fill it in.

    Attributes to set: :attr:`name`, :attr:`brand_number`, :attr:`status_table`, :attr:`send_errors`. Methods to
    write: the fake (:meth:`start_fake`, :meth:`stop_fake`, :meth:`plugin_config`, :meth:`fail_next_send`,
    :meth:`send_attempts`), the webhooks (:meth:`signed_inbound`, :meth:`forgeries`, :meth:`receipt`,
    :meth:`hostile_webhooks`), for a provider that posts a long message in parts, :meth:`long_message_parts`, and
    for one that reports on each part of a long message it sent, :attr:`part_receipts` and :meth:`part_receipt`.
    """

    #: the provider's name: its webhook paths, its ``[plugins.<name>]`` section, the ``provider`` hooks receive
    name: ClassVar[str]
    #: the name its plugin is registered under (the provider's name unless a test registers a copy)
    plugin_name: ClassVar[str | None] = None
    #: a brand number the provider serves in the suite's apps
    brand_number: ClassVar[str]
    #: every status the provider reports in a receipt, in its own terms, and the status it means
    status_table: ClassVar[Mapping[str, DeliveryStatus]]
    #: every send error the provider's fake can give, by the label :meth:`fail_next_send` takes
    send_errors: ClassVar[Mapping[str, SendFailure]]
    #: loggers of the plugin, watched at DEBUG for message bodies beside the host's own
    loggers: ClassVar[Sequence[str]] = ()
    #: how the provider reports on a long message it sent: ``"whole"``, in one receipt under the message's one id
    #: (Twilio); ``"part_ids"``, on each part under the part's own id (its send returns ``SendResult.of_parts``);
    #: ``"segments"``, on each part under the message's one id, naming the part (OpenMarket)
    part_receipts: ClassVar[PartReceipts] = "whole"

    @abc.abstractmethod
    def start_fake(self) -> Any:
        """Start the provider's fake API on loopback and return it."""

    @abc.abstractmethod
    def stop_fake(self, fake: Any) -> None:
        """Stop what :meth:`start_fake` started."""

    def fake_url(self, fake: Any) -> str:
        """The base URL the plugin sends to (the fake's)."""
        return str(fake.url)

    @abc.abstractmethod
    def plugin_config(self, fake: Any) -> dict[str, Any]:
        """The ``[plugins.<name>]`` section of an app that sends to ``fake`` and accepts :meth:`signed_inbound`."""

    def app_config(self, fake: Any) -> dict[str, Any]:
        """The configuration the suite's apps get; override to add plugins (``plugins.disabled``...)."""
        return {
            "plugins": {self.name: self.plugin_config(fake)},
            "numbers": [{"number": self.brand_number, "provider": self.name, "skill": "support"}],
        }

    def register(self) -> list[tuple[str, Any]]:
        """Plugin objects to register in the suite's apps beside the installed ones (a copy under test)."""
        return []

    @abc.abstractmethod
    def fail_next_send(self, fake: Any, error: str, *, to: str) -> None:
        """Make the fake refuse the next send to ``to`` with the error labelled ``error`` in :attr:`send_errors`."""

    @abc.abstractmethod
    def send_attempts(self, fake: Any) -> int:
        """How many send requests the fake received, accepted or refused."""

    @abc.abstractmethod
    def signed_inbound(self, *, message_id: str, text: str, consumer: str = CONSUMER) -> Webhook:
        """An authentic inbound message ``text`` from ``consumer`` to :attr:`brand_number`, with the provider's id
        ``message_id``, as the provider would post it to ``PUBLIC_URL``."""

    def new_message_id(self) -> str:
        """A provider message id no other message in the suite has."""
        return uuid.uuid4().hex

    @abc.abstractmethod
    def forgeries(self, webhook: Webhook) -> Mapping[str, Webhook]:
        """Forged twins of an authentic ``webhook``, by label: each must be refused (401 or 403)."""

    @abc.abstractmethod
    def receipt(self, provider_message_id: str, status: str) -> Webhook:
        """An authentic receipt (status callback) reporting ``status``, a key of :attr:`status_table`."""

    @abc.abstractmethod
    def hostile_webhooks(self) -> st.SearchStrategy[Webhook]:
        """Authenticated webhooks with hostile bodies (see :mod:`smsconnector.testing.hostile`)."""

    def long_message_parts(self, *, text: str, reference: int, consumer: str = CONSUMER) -> list[Webhook] | None:
        """The webhooks of a long ``text`` the provider posts one part at a time, in order; ``None`` (the default)
        when the provider joins the parts itself."""
        return None

    def part_receipt(self, part: SentPart, status: str) -> Webhook:
        """An authentic receipt on one ``part`` of a long message reporting ``status``, a key of
        :attr:`status_table`: under ``part.part_id`` for ``"part_ids"``, under ``part.message_id`` naming
        ``part.sequence`` of ``part.total`` for ``"segments"``. Needed unless :attr:`part_receipts` is ``"whole"``."""
        raise NotImplementedError(
            f"{self.name} reports per part ({self.part_receipts!r}): write part_receipt() to make a receipt on one part"
        )

    def long_text(self) -> str:
        """A text long enough to arrive in three parts or more."""
        return "".join(f"Part of a long message, sentence {n:02d}: my parcel has not arrived. " for n in range(12))


@dataclass
class Host:
    """One app of the suite, served over real HTTP, with the provider's fake and the consent signals it reported."""

    contract: ProviderContract
    app: App
    server: LiveServer
    fake: Any
    signals: list[ConsentSignal]

    def post(self, webhook: Webhook) -> httpx.Response:
        """Deliver ``webhook`` to the host as the provider does."""
        return httpx.post(
            f"{self.server.url}/webhooks/{self.contract.name}/{webhook.kind}",
            content=webhook.body,
            headers=dict(webhook.headers),
            timeout=30,
        )

    def queue_reply(self, text: str, *, to: str = CONSUMER) -> int:
        """Queue an agent's reply through the provider, as the agent API does; its message id."""

        async def queue() -> int:
            async with self.app.store.transaction() as session:
                message = await outbound.queue(
                    session,
                    provider=self.contract.name,
                    from_number=self.contract.brand_number,
                    to_number=to,
                    text=text,
                )
            assert message.id is not None
            return message.id

        return self.server.call(queue)


class _ConsentRecorder:
    """Keeps the consent signals the host reports."""

    def __init__(self, signals: list[ConsentSignal]) -> None:
        self.signals = signals

    @hookimpl
    def smsconnector_consent_signal(self, signal: ConsentSignal) -> None:
        """Remember ``signal``."""
        self.signals.append(signal)


def _message(db: Database, message_id: int) -> dict[str, Any]:
    [row] = db.rows("SELECT status, error_code, provider_message_id FROM messages WHERE id = :id", id=message_id)
    return row


def _settled(db: Database, message_id: int) -> dict[str, Any] | None:
    """The message once the sender is done with it (no outbox row left), else ``None``."""
    return None if db.count("outbox", "message_id = :id", id=message_id) else _message(db, message_id)


def _sent(db: Database, message_id: int) -> str | None:
    return db.scalar("SELECT provider_message_id FROM messages WHERE id = :id", id=message_id)


_references = itertools.count(1)


class ProviderContractTests:
    """The contract suite; subclass it in a test module (named ``Test...``) with ``contract`` set."""

    contract: ClassVar[ProviderContract]
    #: every test on both databases
    pytestmark = [pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Each send error is a test of its own."""
        if "send_error" in metafunc.fixturenames:
            errors = list(self.contract.send_errors)
            metafunc.parametrize("send_error", errors, ids=errors)

    # -- fixtures -------------------------------------------------------------------------------------------

    @pytest.fixture
    def provider_fake(self) -> Iterator[Any]:
        """The provider's fake API on loopback, new for each test."""
        fake = self.contract.start_fake()
        yield fake
        self.contract.stop_fake(fake)

    @pytest.fixture
    def host(
        self, make_app: Callable[..., App], live_server: Callable[[App], LiveServer], provider_fake: Any
    ) -> Callable[..., Host]:
        """``host(**config)``: an app of the provider (configuration overridden by ``config``), served."""

        def start(**config: Any) -> Host:
            signals: list[ConsentSignal] = []
            overrides = {**self.contract.app_config(provider_fake), **config}
            # The suite checks the provider's sends, not consent: the compliance plugin, where installed, would
            # refuse replies to a consumer who never texted.
            overrides["plugins"] = {"compliance": {"consent": {"conversational": "none"}}, **overrides["plugins"]}
            app = make_app(
                register=[*self.contract.register(), ("contract-consent", _ConsentRecorder(signals))], **overrides
            )
            return Host(self.contract, app, live_server(app), provider_fake, signals)

        return start

    # -- (1) who answers, retries, forgeries -----------------------------------------------------------------

    def test_other_providers_are_declined_synchronously(self, host: Callable[..., Host]) -> None:
        app = host().app
        plugin = app.plugin(self.contract.plugin_name or self.contract.name)
        assert plugin is not None, f"no plugin is registered as {self.contract.plugin_name or self.contract.name!r}"

        assert_declines_other_providers(plugin, app)

    def test_a_signed_inbound_message_retried_is_stored_once(self, host: Callable[..., Host], db: Database) -> None:
        served = host()
        message_id = self.contract.new_message_id()
        webhook = self.contract.signed_inbound(message_id=message_id, text="Is my order on its way?")

        answers = [served.post(webhook).status_code for _ in range(2)]  # a retry after the answer
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:  # and retries while one is in flight
            answers += pool.map(lambda _: served.post(webhook).status_code, range(4))

        assert all(200 <= answer < 300 for answer in answers), answers
        rows = db.rows("SELECT provider_message_id, body FROM messages")
        assert rows == [{"provider_message_id": message_id, "body": "Is my order on its way?"}]
        assert db.count("conversations") == 1

    def test_every_forgery_is_refused_and_stores_nothing(self, host: Callable[..., Host], db: Database) -> None:
        served = host()
        authentic = {
            "inbound": self.contract.signed_inbound(message_id=self.contract.new_message_id(), text="Refund me"),
            "receipt": self.contract.receipt(self.contract.new_message_id(), next(iter(self.contract.status_table))),
        }
        forgeries = {
            f"{kind}, {label}": forged
            for kind, webhook in authentic.items()
            for label, forged in self.contract.forgeries(webhook).items()
        }
        assert forgeries, "forgeries() gave no forged webhook"
        before = db.contents()

        outcomes = {label: served.post(forged).status_code for label, forged in forgeries.items()}

        assert {label: status for label, status in outcomes.items() if status not in (401, 403)} == {}, outcomes
        assert db.contents() == before

    # -- (2) hostile bodies ------------------------------------------------------------------------------------

    @pytest.fixture
    def hostile_host(self, host: Callable[..., Host]) -> Host:
        """One host for every example of the hostile test; a routing failure shows within 2 s."""
        return host(inbound={"timeout_seconds": 2})

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def test_hostile_bodies_get_2xx_or_4xx_and_a_refusal_stores_nothing(
        self, hostile_host: Host, db: Database, data: st.DataObject
    ) -> None:
        webhook = data.draw(self.contract.hostile_webhooks())
        before = db.contents()

        response = hostile_host.post(webhook)

        assert_kept_its_promise(response.status_code, before, db)

    # -- (3) receipts ------------------------------------------------------------------------------------------

    def _sent_messages(self, served: Host, db: Database, count: int) -> list[tuple[int, str]]:
        """``count`` replies sent through the fake, each to a consumer of its own: (message id, provider id)."""
        ids = [served.queue_reply(f"Reply {n}", to=f"+1415555{n + 300:04d}") for n in range(count)]
        return [(message_id, eventually(lambda m=message_id: _sent(db, m))) for message_id in ids]

    def test_every_receipt_status_maps_to_its_delivery_status(self, host: Callable[..., Host], db: Database) -> None:
        served = host()
        table = self.contract.status_table
        sent = dict(zip(table, self._sent_messages(served, db, len(table)), strict=True))

        answers = {
            status: served.post(self.contract.receipt(provider_id, status)).status_code
            for status, (_, provider_id) in sent.items()
        }

        assert answers == {status: 200 for status in table}
        stored = {status: _message(db, message_id)["status"] for status, (message_id, _) in sent.items()}
        assert stored == {status: expected.value for status, expected in table.items()}

    def test_a_status_never_moves_back(self, host: Callable[..., Host], db: Database) -> None:
        served = host()
        table = self.contract.status_table
        sent = dict(zip(table, self._sent_messages(served, db, len(table)), strict=True))

        answers = set()
        for status, (_, provider_id) in sent.items():
            answers.add(served.post(self.contract.receipt(provider_id, status)).status_code)
            for later in table:  # every report after it: an earlier one, late, or another terminal one
                if later != status and (table[status].terminal or table[later].rank < table[status].rank):
                    answers.add(served.post(self.contract.receipt(provider_id, later)).status_code)

        assert answers == {200}
        stored = {status: _message(db, message_id)["status"] for status, (message_id, _) in sent.items()}
        assert stored == {status: expected.value for status, expected in table.items()}

    # -- (4) and (7) send errors, opt-outs ----------------------------------------------------------------------

    def test_a_send_error_is_retried_or_recorded_as_its_class_says(
        self, host: Callable[..., Host], db: Database, send_error: str
    ) -> None:
        failure = self.contract.send_errors[send_error]
        served = host()
        self.contract.fail_next_send(served.fake, send_error, to=CONSUMER)

        message_id = served.queue_reply("Your parcel ships today.")

        row = eventually(lambda: _settled(db, message_id))
        if failure.outcome == "retried":
            assert (row["error_code"], row["provider_message_id"] is not None) == (None, True), row
            assert row["status"] not in ("failed", "undelivered"), row
            assert self.contract.send_attempts(served.fake) == 2
            assert served.signals == []
        else:
            assert (row["status"], row["error_code"]) == ("failed", failure.code)
            assert self.contract.send_attempts(served.fake) == 1
            opt_outs = [(s.action, s.consumer_number, s.brand_number, s.provider, s.message_id) for s in served.signals]
            expected = [("opt_out", CONSUMER, self.contract.brand_number, self.contract.name, message_id)]
            assert opt_outs == (expected if failure.outcome == "opted_out" else [])

    # -- (5) logs -------------------------------------------------------------------------------------------

    def test_logs_never_contain_a_message_body(
        self, host: Callable[..., Host], db: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)  # below INFO the database driver logs statements' parameters
        for name in ("smsconnector", *self.contract.loggers):
            caplog.set_level(logging.DEBUG, logger=name)
        served = host()
        inbound, reply = "Inbound secret 7f3a: my card ends 4242", "Reply secret 9c1e: your code is 5512"
        authentic = self.contract.signed_inbound(message_id=self.contract.new_message_id(), text=inbound)

        assert served.post(authentic).status_code == 200
        for forged in self.contract.forgeries(authentic).values():
            served.post(forged)
        message_id = served.queue_reply(reply)
        provider_id = eventually(lambda: _sent(db, message_id))
        for status in self.contract.status_table:
            served.post(self.contract.receipt(provider_id, status))

        assert caplog.records, "nothing was logged: the check would prove nothing"
        assert inbound not in caplog.text and "secret 7f3a" not in caplog.text
        assert reply not in caplog.text and "secret 9c1e" not in caplog.text

    # -- (6) parts -------------------------------------------------------------------------------------------

    def _parts(self, text: str) -> list[Webhook]:
        parts = self.contract.long_message_parts(text=text, reference=next(_references) % 256)
        if parts is None:
            pytest.skip(f"{self.contract.name} joins the parts of a long message before posting it")
        assert len(parts) >= 3, "long_text() must make three parts or more"
        return parts

    def test_shuffled_and_duplicated_parts_reassemble_once(self, host: Callable[..., Host], db: Database) -> None:
        text = self.contract.long_text()
        parts = self._parts(text)
        served = host()
        arrivals = parts + parts[: len(parts) // 2 + 1]
        random.Random(len(text)).shuffle(arrivals)

        answers = [served.post(part).status_code for part in arrivals]

        assert answers == [200] * len(arrivals)
        rows = db.rows("SELECT body, incomplete FROM messages WHERE direction = 'inbound'")
        assert [(r["body"], bool(r["incomplete"])) for r in rows] == [(text, False)]

    def test_a_missing_part_times_out_as_incomplete(self, host: Callable[..., Host], db: Database) -> None:
        text = self.contract.long_text()
        parts = self._parts(text)
        # Long enough for every part but the last to arrive first, on a busy machine too.
        served = host(providers={self.contract.name: {"reassembly_timeout_seconds": 2}})
        arrivals = parts[:-1]
        random.Random(len(text)).shuffle(arrivals)

        answers = [served.post(part).status_code for part in arrivals]

        assert answers == [200] * len(arrivals)
        rows = eventually(lambda: db.rows("SELECT body, incomplete FROM messages WHERE direction = 'inbound'"))
        [(body, incomplete)] = [(r["body"], bool(r["incomplete"])) for r in rows]
        assert incomplete and text.startswith(body) and len(body) < len(text), (body, incomplete)

    # -- (8) proxies -------------------------------------------------------------------------------------------

    def test_a_proxy_named_in_the_environment_carries_the_sends(
        self, host: Callable[..., Host], db: Database, recording_proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", recording_proxy.url)
        served = host()

        message_id = served.queue_reply("Sent through the proxy.")

        assert eventually(lambda: _sent(db, message_id))
        assert recording_proxy.seen, "the send did not go through the proxy"
        assert all(url.startswith(self.contract.fake_url(served.fake)) for url in recording_proxy.seen)

    def test_no_proxy_exempts_the_api_host(
        self, host: Callable[..., Host], db: Database, recording_proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", recording_proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        served = host()

        message_id = served.queue_reply("Sent straight to the provider.")

        assert eventually(lambda: _sent(db, message_id))
        assert recording_proxy.seen == []

    # -- (9) per-part receipts ----------------------------------------------------------------------------------

    def _status_named(self, *wanted: DeliveryStatus) -> str:
        """The first status of :attr:`status_table` that maps to one of ``wanted``."""
        names = [name for name, status in self.contract.status_table.items() if status in wanted]
        assert names, f"status_table has no status for {' or '.join(s.value for s in wanted)}"
        return names[0]

    def _skip_unless_per_part(self) -> None:
        if self.contract.part_receipts == "whole":
            pytest.skip(f"{self.contract.name} reports on a long message in one receipt, under its one id")

    def _sent_parts(self, served: Host, db: Database, *, to: str) -> tuple[int, list[SentPart]]:
        """A long reply sent through the fake to ``to``: its message id and its parts, as receipts name them."""
        shape = self.contract.part_receipts
        message_id = served.queue_reply(self.contract.long_text(), to=to)
        provider_id = eventually(lambda: _sent(db, message_id))
        if shape == "part_ids":
            rows = db.rows(
                "SELECT sequence, total, provider_message_id FROM delivery_parts WHERE message_id = :id"
                " ORDER BY sequence",
                id=message_id,
            )
            assert len(rows) >= 2 and all(r["provider_message_id"] for r in rows), (
                f"{self.contract.name} ids each part: its send must return SendResult.of_parts(part_ids)"
            )
            parts = [SentPart(provider_id, r["provider_message_id"], r["sequence"], r["total"]) for r in rows]
        else:
            total = db.scalar("SELECT num_segments FROM messages WHERE id = :id", id=message_id)
            assert total and total >= 2, f"{self.contract.name}'s SendResult must say how many segments it sent"
            parts = [SentPart(provider_id, None, n, total) for n in range(1, total + 1)]
        return message_id, parts

    def test_a_long_message_is_delivered_once_every_part_is(self, host: Callable[..., Host], db: Database) -> None:
        self._skip_unless_per_part()
        served = host()
        delivered = self._status_named(DeliveryStatus.DELIVERED)
        message_id, parts = self._sent_parts(served, db, to=CONSUMER)
        early = parts[:-1] + parts[:1]  # every part but the last, one of them twice
        random.Random(len(parts)).shuffle(early)

        answers = [served.post(self.contract.part_receipt(part, delivered)).status_code for part in early]
        before_last = _message(db, message_id)["status"]
        answers.append(served.post(self.contract.part_receipt(parts[-1], delivered)).status_code)

        assert answers == [200] * (len(early) + 1)
        assert (before_last, _message(db, message_id)["status"]) == ("sent", "delivered")

    def test_a_failed_part_fails_the_message_with_its_code(self, host: Callable[..., Host], db: Database) -> None:
        self._skip_unless_per_part()
        served = host()
        delivered = self._status_named(DeliveryStatus.DELIVERED)
        failing = self._status_named(DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
        message_id, parts = self._sent_parts(served, db, to=CONSUMER)
        # What the provider's failure makes of a message in one part: the long one must fail the same way.
        [(short_id, short_provider_id)] = self._sent_messages(served, db, 1)
        assert served.post(self.contract.receipt(short_provider_id, failing)).status_code == 200
        expected = _message(db, short_id)

        answers = [served.post(self.contract.part_receipt(parts[0], delivered)).status_code]
        answers.append(served.post(self.contract.part_receipt(parts[1], failing)).status_code)
        failed = _message(db, message_id)
        # Never back: every part delivered after the failure, the failed one too, changes nothing.
        answers += [served.post(self.contract.part_receipt(part, delivered)).status_code for part in parts]

        assert answers == [200] * (len(parts) + 2)
        assert (failed["status"], failed["error_code"]) == (expected["status"], expected["error_code"])
        assert expected["error_code"], f"a {failing!r} receipt kept no error code"
        assert _message(db, message_id) == failed
