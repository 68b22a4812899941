"""A faithful stand-in for Twilio's REST API, served on loopback over real HTTP, for tests and benchmarks.

::

    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()   # 127.0.0.1, a port the OS picks (or host=, port=): fake.url
    # point the plugin at it:  [plugins.twilio] api_base_url = fake.url
    fake.deliver_to = server.url                         # where the public_url really leads (the "network")
    fake.fail(OPTED_OUT, to="+14155550123")              # the next send to that number is refused with 21610
    fake.fail(TOO_MANY_REQUESTS, SERVER_ERROR)           # the next two sends to anyone: 429, then 500
    fake.recover()                                       # accept again, dropping the failures not yet given
    fake.stall_next(5.0)                                 # the next request is answered 5 s late (a timeout)
    fake.report(sid, "sent", "delivered")                # post signed status callbacks, in that order
    fake.requests                                        # every request received, in order, with its answer
    fake.stop()

It is a :class:`~smsconnector.testing.fake.FakeProvider`: the request log, the scripted answers
(``respond_next``, ``stall_next``) and the host and port come from there; Twilio's own errors, by destination,
from :meth:`FakeTwilio.fail`.

It speaks what the official client and Twilio's documentation expect: ``Messages.json`` answers 201 with
the message resource, errors come as ``{"code", "message", "more_info", "status"}`` (429 with 20429, 401
with 20003 for wrong credentials), and status callbacks are form posts signed with
``RequestValidator.compute_signature`` over the ``StatusCallback`` URL, like Twilio's own. ``GET Messages.json``
lists the account's messages, the latest first, filtered by ``To``, ``From`` and ``DateSent`` (a day; ``DateSent>``
on or after it, ``DateSent<`` on or before it), as Twilio documents; a message gets its ``date_sent`` when it
leaves the account's queue (``queue_seconds`` after it was accepted). The numbers endpoints
(``IncomingPhoneNumbers``, ``AvailablePhoneNumbers``) cover listing, searching, buying and updating a number's
webhooks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import re
import secrets
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

from smsconnector.plugin import segment
from smsconnector.testing.fake import FakeProvider, Recorded

API = "/2010-04-01/Accounts/{account}"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True, slots=True)
class Failure:
    """An error answer in Twilio's documented JSON shape."""

    status: int
    code: int
    message: str
    retry_after: float | None = None  #: sent as a Retry-After header when set

    def response(self, **extra: Any) -> JSONResponse:
        body = {"code": self.code, "message": self.message, "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status, **extra}
        headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
        return JSONResponse(body, status_code=self.status, headers=headers)


INVALID_TO = Failure(400, 21211, "Invalid 'To' Phone Number")
REGION_NOT_ENABLED = Failure(400, 21408, "Permission to send an SMS has not been enabled for the region indicated "
                                         "by the 'To' number")
OPTED_OUT = Failure(400, 21610, "Attempt to send to unsubscribed recipient")
NOT_MOBILE = Failure(400, 21614, "'To' number is not a valid mobile number")
TOO_MANY_REQUESTS = Failure(429, 20429, "Too Many Requests")
SERVER_ERROR = Failure(500, 20500, "Internal Server Error")
AUTHENTICATE = Failure(401, 20003, "Authenticate")


class TwilioRequest(Recorded):
    """One request the fake received, and the status it answered, with its form and the API user it named."""

    @property
    def form(self) -> tuple[tuple[str, str], ...]:
        """A POST's form fields, in order, blank values kept; none for a GET."""
        if self.method != "POST":
            return ()
        return tuple(parse_qsl(self.body.decode(errors="replace"), keep_blank_values=True))

    @property
    def username(self) -> str | None:
        """The user of its Basic credentials (an account or API key SID), whether they were right or not."""
        return _basic_credentials(self.headers.get("authorization", ""))[0]

    def values(self, key: str) -> list[str]:
        """Every value of form field ``key`` (``MediaUrl`` repeats)."""
        return [v for k, v in self.form if k == key]

    @property
    def params(self) -> dict[str, str]:
        """The form fields, one value each."""
        return dict(self.form)


@dataclass(frozen=True, slots=True)
class Callback:
    """A status callback the fake posted, and what the host answered."""

    sid: str
    status: str
    url: str
    answer: int  #: the host's HTTP status, 0 when it could not be reached


class FakeTwilio(FakeProvider):
    """One Twilio account's REST API. ``api_keys`` maps API key SIDs the account accepts to their secrets."""

    recorded_as = TwilioRequest
    requests: list[TwilioRequest]  # type: ignore[assignment]

    def __init__(self, account_sid: str, auth_token: str, *, api_keys: dict[str, str] | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys = dict(api_keys or {})
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._gate: asyncio.Event | None = None
        super().__init__(host=host, port=port)
        self.reset()

    def endpoints(self) -> list[Route]:
        """The endpoints of Messages, IncomingPhoneNumbers and AvailablePhoneNumbers the plugin uses."""
        return [
            Route(API + "/Messages.json", self._create_message, methods=["POST"]),
            Route(API + "/Messages.json", self._list_messages, methods=["GET"]),
            Route(API + "/Messages/{sid}.json", self._fetch_message, methods=["GET"]),
            Route(API + "/IncomingPhoneNumbers.json", self._list_numbers, methods=["GET"]),
            Route(API + "/IncomingPhoneNumbers.json", self._buy_number, methods=["POST"]),
            Route(API + "/IncomingPhoneNumbers/{sid}.json", self._update_number, methods=["POST"]),
            Route(API + "/AvailablePhoneNumbers/{country}/Local.json", self._search_numbers, methods=["GET"]),
        ]

    def reset(self) -> None:
        """Forget every request, message, number and script, and put the settings below back to their defaults.

        Callbacks still pending are dropped and held sends are answered, so nothing of before leaks into after.
        """
        if self._http is not None:  # serving
            self.call(self._settle)
        super().reset()
        #: statuses posted to a message's StatusCallback after each accepted send, ``report_delay`` seconds
        #: later (``("delivered", "sent")`` posts them out of order); empty: only :meth:`report` posts
        self.auto_report: tuple[str, ...] = ()
        self.report_delay = 0.05
        #: seconds each send waits before its answer, like Twilio's own API latency (for benchmarks)
        self.latency = 0.0
        #: seconds an accepted message waits in the account's queue before it is sent on and gets its date_sent
        self.queue_seconds = 0.0
        #: scheme and host a StatusCallback's public URL really reaches (a load balancer's job); the
        #: signature still covers the URL as given
        self.deliver_to: str | None = None
        #: numbers for sale, by country
        self.available: dict[str, list[str]] = {"US": ["+14155550101", "+14155550102", "+12125550101"],
                                                "CA": ["+16045550101"], "GB": ["+447700900101"]}
        self.messages: dict[str, dict[str, Any]] = {}
        self.numbers: dict[str, dict[str, Any]] = {}
        self.callbacks: list[Callback] = []
        #: sends being answered right now, and the most there ever were at once
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: defaultdict[str | None, deque[Failure]] = defaultdict(deque)
        self._callback_urls: dict[str, str | None] = {}

    # -- running -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Hold the client that posts status callbacks; on the way out, drop the pending ones and answer held sends."""
        async with httpx.AsyncClient(timeout=10) as http:
            self._http = http
            try:
                yield
            finally:
                await self._settle()

    async def _settle(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    # -- scripting and inspecting ------------------------------------------------------------------------

    def fail(self, *failures: Failure, to: str | None = None) -> None:
        """Refuse the next sends (to ``to``, or to anyone) with ``failures``, one per request, then accept again."""
        self._failures[to].extend(failures)

    def recover(self) -> None:
        """Accept sends again at once: the failures :meth:`fail` scripted and not yet given are dropped (an
        outage ends)."""
        self._failures.clear()

    def message_requests(self, to: str | None = None) -> list[TwilioRequest]:
        """Every ``Messages.json`` create request received (to ``to``), accepted or not."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
                and (to is None or r.params.get("To") == to)]

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        """The messages the fake accepted (to ``to``), in order."""
        return [m for m in self.messages.values() if to is None or m["to"] == to]

    def add_number(self, phone_number: str, **fields: Any) -> dict[str, Any]:
        """Give the account a number it already owns."""
        number = self._number_resource(phone_number)
        number.update(fields)
        self.numbers[number["sid"]] = number
        return number

    def report(self, sid: str, *statuses: str, error_code: int | None = None) -> list[int]:
        """Post signed status callbacks for message ``sid``, in the order given; the host's answers."""
        return self.call(lambda: self._post_statuses(self.messages[sid], statuses, error_code))

    def hold(self) -> None:
        """Keep every send waiting for its answer until :meth:`release` (to see how many are in flight)."""

        async def close_gate() -> None:
            self._gate = asyncio.Event()

        self.call(close_gate)

    def release(self) -> None:
        """Answer the sends that :meth:`hold` kept waiting, and the ones after them at once."""

        async def open_gate() -> None:
            if self._gate is not None:
                self._gate.set()
            self._gate = None

        self.call(open_gate)

    # -- the API -----------------------------------------------------------------------------------------

    def refuse(self, request: Request) -> Response | None:
        """Twilio's 401 for wrong credentials (an account's auth token or an API key's secret), 404 for another
        account's resources."""
        username, password = _basic_credentials(request.headers.get("authorization", ""))
        secret = self.auth_token if username == self.account_sid else self.api_keys.get(username or "")
        if password is None or secret is None or not hmac.compare_digest(password.encode(), secret.encode()):
            response = AUTHENTICATE.response(detail="Your AccountSid or AuthToken was incorrect.")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if request.path_params["account"] != self.account_sid:
            return Failure(404, 20404, f"The requested resource {request.url.path} was not found").response()
        return None

    async def _create_message(self, request: Request, body: bytes) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if self._gate is not None:
                await self._gate.wait()
            return self._answer_create(_form(body))
        finally:
            self.in_flight -= 1

    def _answer_create(self, form: dict[str, list[str]]) -> Response:
        to = _first(form, "To")
        scripted = self._failures.get(to) or self._failures.get(None)
        if scripted:
            return scripted.popleft().response()
        body, media = _first(form, "Body") or "", form.get("MediaUrl", [])
        service, sender = _first(form, "MessagingServiceSid"), _first(form, "From")
        callback = _first(form, "StatusCallback")
        if not to:
            return Failure(400, 21604, "A 'To' phone number is required.").response()
        if not sender and not service:
            return Failure(400, 21603, "A 'From' phone number is required.").response()
        if not body and not media:
            return Failure(400, 21602, "Message body is required.").response()
        if len(body) > 1600:
            return Failure(400, 21617, "The concatenated message body exceeds the 1600 character limit.").response()
        if not E164.match(to):
            return Failure(400, 21211, f"Invalid 'To' Phone Number: {to}").response()
        if callback and urlsplit(callback).scheme not in ("http", "https"):
            return Failure(400, 21609, "Invalid StatusCallback URL").response()
        now = _rfc2822()
        sid = ("MM" if media else "SM") + uuid.uuid4().hex
        message = {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body, "date_created": now,
            "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": sender, "messaging_service_sid": service, "num_media": str(len(media)),
            # Through a Messaging Service the sender (hence the encoding) is not chosen yet: "0" segments.
            "num_segments": "0" if service else str(max(1, segment(body).count)), "price": None,
            "price_unit": "USD", "sid": sid, "status": "accepted" if service else "queued", "to": to,
            "uri": f"{API.format(account=self.account_sid)}/Messages/{sid}.json",
            "subresource_uris": {"media": f"{API.format(account=self.account_sid)}/Messages/{sid}/Media.json"},
        }
        self.messages[sid] = message
        self._callback_urls[sid] = callback
        if self.auto_report and callback:
            self._spawn(self._report_later(message))
        answer = JSONResponse(message, status_code=201)  # as accepted: not sent on yet
        if self.queue_seconds:
            self._spawn(self._leave_queue_later(message))
        else:
            _leave_queue(message)
        return answer

    async def _leave_queue_later(self, message: dict[str, Any]) -> None:
        await asyncio.sleep(self.queue_seconds)
        _leave_queue(message)

    async def _list_messages(self, request: Request, body: bytes) -> Response:
        query = request.query_params
        # The official client sends a datetime (2026-12-06T00:00:00Z); Twilio filters on its day.
        days = {op: date.fromisoformat(query[f"DateSent{op}"][:10])
                for op in ("", "<", ">") if f"DateSent{op}" in query}
        listed = [m for m in reversed(self.messages.values())
                  if query.get("To", m["to"]) == m["to"] and query.get("From", m["from"]) == m["from"]
                  and _sent_within(m, days)]
        return _page(request, "messages", listed)

    async def _fetch_message(self, request: Request, body: bytes) -> Response:
        message = self.messages.get(request.path_params["sid"])
        if message is None:
            return Failure(404, 20404, f"The requested resource {request.url.path} was not found").response()
        return JSONResponse(message)

    async def _list_numbers(self, request: Request, body: bytes) -> Response:
        wanted = _digits(request.query_params.get("PhoneNumber", ""))
        numbers = [n for n in self.numbers.values() if wanted in _digits(n["phone_number"])]
        return _page(request, "incoming_phone_numbers", numbers)

    async def _search_numbers(self, request: Request, body: bytes) -> Response:
        country = request.path_params["country"]
        prefix = "+1" + request.query_params["AreaCode"] if "AreaCode" in request.query_params else "+"
        offered = [_available_resource(n, country) for n in self.available.get(country, []) if n.startswith(prefix)]
        return _page(request, "available_phone_numbers", offered)

    async def _buy_number(self, request: Request, body: bytes) -> Response:
        form = _form(body)
        wanted = _first(form, "PhoneNumber")
        for offered in self.available.values():
            if wanted in offered:
                offered.remove(wanted)
                break
        else:
            return Failure(400, 21422, "PhoneNumber Requested is not available").response()
        number = self._number_resource(wanted or "")
        _apply_updates(number, form)
        self.numbers[number["sid"]] = number
        return JSONResponse(number, status_code=201)

    async def _update_number(self, request: Request, body: bytes) -> Response:
        form = _form(body)
        number = self.numbers.get(request.path_params["sid"])
        if number is None:
            return Failure(404, 20404, f"The requested resource {request.url.path} was not found").response()
        _apply_updates(number, form)
        number["date_updated"] = _rfc2822()
        return JSONResponse(number)

    def _number_resource(self, phone_number: str) -> dict[str, Any]:
        sid = "PN" + uuid.uuid4().hex
        now = _rfc2822()
        return {
            "account_sid": self.account_sid, "address_requirements": "none", "api_version": "2010-04-01",
            "beta": False, "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": now, "date_updated": now, "friendly_name": phone_number, "phone_number": phone_number,
            "origin": "twilio", "sid": sid, "sms_application_sid": "", "sms_fallback_method": "POST",
            "sms_fallback_url": "", "sms_method": "POST", "sms_url": "", "status_callback": "",
            "status_callback_method": "POST", "voice_method": "POST", "voice_url": "", "status": "in-use",
            "uri": f"{API.format(account=self.account_sid)}/IncomingPhoneNumbers/{sid}.json",
        }

    # -- status callbacks --------------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report_later(self, message: dict[str, Any]) -> None:
        await asyncio.sleep(self.report_delay)
        await self._post_statuses(message, self.auto_report, None)

    async def _post_statuses(self, message: dict[str, Any], statuses: Iterable[str],
                             error_code: int | None) -> list[int]:
        url = self._callback_urls.get(message["sid"])
        if not url:
            raise ValueError(f"message {message['sid']} was sent without a StatusCallback")
        return [await self._post_status(url, message, status, error_code) for status in statuses]

    async def _post_status(self, url: str, message: dict[str, Any], status: str, error_code: int | None) -> int:
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": message["from"] or "",
                  "To": message["to"], "MessageSid": message["sid"], "SmsSid": message["sid"],
                  "MessageStatus": status, "SmsStatus": status}
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if status in ("failed", "undelivered") and error_code is not None:
            params["ErrorCode"] = str(error_code)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        message["status"] = status
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        target = url
        if self.deliver_to:
            parts = urlsplit(url)
            target = self.deliver_to.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        assert self._http is not None
        try:
            answer = (await self._http.post(target, content=urlencode(params), headers={
                SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded",
                "I-Twilio-Idempotency-Token": secrets.token_hex(16), "User-Agent": "TwilioProxy/1.1"})).status_code
        except httpx.HTTPError:
            answer = 0  # unreachable, as Twilio would log error 11200; the message keeps its status
        self.callbacks.append(Callback(message["sid"], status, url, answer))
        return answer


#: Form fields of a number update, and the resource property each sets.
_NUMBER_FIELDS = {"SmsUrl": "sms_url", "SmsMethod": "sms_method", "SmsFallbackUrl": "sms_fallback_url",
                  "SmsApplicationSid": "sms_application_sid", "StatusCallback": "status_callback",
                  "StatusCallbackMethod": "status_callback_method", "FriendlyName": "friendly_name",
                  "VoiceUrl": "voice_url", "VoiceMethod": "voice_method"}


def _leave_queue(message: dict[str, Any]) -> None:
    """Send an accepted message on to the carrier: it gets its date_sent, and "sent" unless a report moved it."""
    message["date_sent"] = _rfc2822()
    if message["status"] in ("accepted", "queued"):
        message["status"] = "sent"


def _sent_within(message: dict[str, Any], days: dict[str, date]) -> bool:
    """Whether ``message`` was sent on the days a list's ``DateSent`` filters (``""`` on, ``"<"`` on or before,
    ``">"`` on or after) allow; a message not sent yet matches no such filter."""
    if not days:
        return True
    if message["date_sent"] is None:
        return False
    sent = parsedate_to_datetime(message["date_sent"]).date()
    return (sent == days.get("", sent)) and sent <= days.get("<", sent) and sent >= days.get(">", sent)


def _apply_updates(number: dict[str, Any], form: dict[str, list[str]]) -> None:
    for key, prop in _NUMBER_FIELDS.items():
        if key in form:
            number[prop] = form[key][0]


def _available_resource(phone_number: str, country: str) -> dict[str, Any]:
    return {"friendly_name": phone_number, "phone_number": phone_number, "lata": None, "locality": None,
            "rate_center": None, "latitude": None, "longitude": None, "region": None, "postal_code": None,
            "iso_country": country, "address_requirements": "none", "beta": False,
            "capabilities": {"voice": True, "SMS": True, "MMS": True}}


def _page(request: Request, key: str, items: list[dict[str, Any]]) -> JSONResponse:
    size = int(request.query_params.get("PageSize", "50"))
    page = int(request.query_params.get("Page", "0"))
    chunk = items[page * size:(page + 1) * size]
    more = (page + 1) * size < len(items)
    base = request.url.path

    def uri(number: int) -> str:
        return f"{base}?{urlencode({**request.query_params, 'Page': number, 'PageSize': size})}"

    return JSONResponse({key: chunk, "start": page * size, "end": page * size + max(0, len(chunk) - 1),
                         "page": page, "page_size": size, "uri": uri(page), "first_page_uri": uri(0),
                         "next_page_uri": uri(page + 1) if more else None,
                         "previous_page_uri": uri(page - 1) if page else None})


def _form(body: bytes) -> dict[str, list[str]]:
    """A form-encoded body's fields, each with every value it was given."""
    form: dict[str, list[str]] = defaultdict(list)
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        form[key].append(value)
    return form


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    """The user and password of a Basic ``Authorization`` header; ``(None, None)`` for anything else."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return username, password


def _first(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


def _rfc2822() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)
