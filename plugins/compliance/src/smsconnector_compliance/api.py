"""The plugin's HTTP API: the ledger as CSV, consent obtained elsewhere, agent opt-outs, and the send preview.

::

    GET  /api/compliance/ledger.csv   admin          ?consumer=+1...&since=ISO&until=ISO
    POST /api/compliance/consent      admin          consent, revocation or opt-in obtained outside SMS
    POST /api/compliance/opt-out      agent, admin   the consumer asked to stop by phone, email...
    POST /api/compliance/preview      agent, admin   encoding, segments, and what the send gate says now
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from smsconnector.auth import Principal
from smsconnector.plugin import (
    InvalidNumber,
    Malformed,
    MessageClass,
    OutboundMessage,
    RequestRejected,
    TooLarge,
    segment,
    to_e164,
)
from smsconnector.untrusted import loads

from . import gate, ledger
from .location import locate
from .models import CONSENT, OPT_OUT, REVOKE, LedgerEvent

if TYPE_CHECKING:
    from smsconnector.plugin import App

    from .hooks import Compliance

#: The CSV's columns, in order: the ledger's fields.
COLUMNS = tuple(LedgerEvent.model_fields)
#: Free-text columns that a spreadsheet could read as a formula; numbers such as "+1..." are left alone.
_PAGE = 1000
_FREE_TEXT = frozenset({"source", "consumer_action", "raw_text", "matched", "disclosure_text", "campaign",
                        "confirmation_text"})


class Invalid(RequestRejected):
    """The JSON is well-formed but its fields are missing or wrong."""

    status = 422
    code = "invalid"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _e164(value: str) -> str:
    try:
        return to_e164(value)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


class ConsentBody(_Body):
    consumer: str
    brand_number: str
    action: Literal["consent", "revoke", "opt_in", "opt_out"] = "consent"
    consent_class: Literal["conversational", "informational", "marketing"] | None = None
    method: str = Field("web_form", min_length=1, max_length=24)
    #: where it was obtained: a form URL, an IVR call id and key, an import batch
    source: str = Field(min_length=1, max_length=300)
    consumer_action: str | None = Field(None, max_length=300)
    disclosure_text: str | None = Field(None, max_length=10_000)
    disclosure_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    campaign: str | None = Field(None, max_length=100)
    #: when the consumer acted; defaults to now
    occurred_at: datetime | None = None

    _numbers = field_validator("consumer", "brand_number")(_e164)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-05-01T14:00:00Z")
        return value

    def problems(self) -> list[str]:
        wrong = []
        if self.action in (CONSENT, REVOKE) and self.consent_class is None:
            wrong.append(f"consent_class: required for '{self.action}'")
        if self.action == CONSENT and self.consent_class == "marketing":
            # Prior express written consent: a clear disclosure and the consumer's affirmative act.
            if not (self.disclosure_text or self.disclosure_hash):
                wrong.append("disclosure_text: marketing consent needs the disclosure the consumer agreed to "
                             "(or its disclosure_hash)")
            if not self.consumer_action:
                wrong.append("consumer_action: marketing consent needs the consumer's act (checkbox, keyword...)")
        return wrong


class OptOutBody(_Body):
    consumer: str
    brand_number: str
    method: Literal["agent", "voice", "email", "web_form", "mail", "other"] = "agent"
    #: what the consumer said, or where: "asked on call 4411 to stop texting"
    source: str | None = Field(None, max_length=300)

    _numbers = field_validator("consumer", "brand_number")(_e164)


class PreviewBody(_Body):
    to: str
    from_: str = Field(alias="from")
    text: str = Field(max_length=100_000)
    message_class: MessageClass = "conversational"

    _numbers = field_validator("to", "from_")(_e164)


def routes(plugin: Compliance, app: App) -> list[Route]:
    api = _Api(plugin, app)
    return [
        Route("/api/compliance/ledger.csv", api.ledger_csv, methods=["GET"]),
        Route("/api/compliance/consent", api.consent, methods=["POST"]),
        Route("/api/compliance/opt-out", api.opt_out, methods=["POST"]),
        Route("/api/compliance/preview", api.preview, methods=["POST"]),
    ]


class _Api:
    def __init__(self, plugin: Compliance, app: App) -> None:
        self.plugin = plugin
        self.app = app

    async def _body(self, request: Request, model: type[BaseModel]) -> Any:
        limit = self.app.config.max_body_bytes
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        # Not JSON, or holding what no database stores (NUL, a lone surrogate, deep nesting, 1e999): 400.
        data = loads(b"".join(chunks), strict=True)
        if not isinstance(data, dict):
            raise Malformed("body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise Invalid("; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                    for e in exc.errors())) from None

    def _brand(self, number: str) -> None:
        if self.app.config.number(number) is None:
            raise Invalid(f"brand_number: {number} is not one of this deployment's numbers")

    async def ledger_csv(self, request: Request) -> Response:
        await self.app.auth.require(request, "admin")
        params = request.query_params
        unknown = set(params) - {"consumer", "since", "until"}
        if unknown:
            raise Malformed(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        filters = []
        if "consumer" in params:
            try:
                filters.append(LedgerEvent.consumer_number == to_e164(params["consumer"]))
            except InvalidNumber as exc:
                raise Malformed(f"consumer: {exc}") from None
        if "since" in params:
            filters.append(LedgerEvent.occurred_at >= _when("since", params["since"]))
        if "until" in params:
            filters.append(LedgerEvent.occurred_at < _when("until", params["until"]))
        return StreamingResponse(self._csv(filters), media_type="text/csv; charset=utf-8",
                                 headers={"content-disposition": 'attachment; filename="compliance-ledger.csv"'})

    async def _csv(self, filters: list[Any]) -> AsyncIterator[str]:
        """The CSV in pages, each read in its own short session: a long download must not hold the database."""
        buffer = io.StringIO()
        out = csv.writer(buffer)
        out.writerow(COLUMNS)
        after = 0
        while True:
            async with self.app.store.session() as session:
                page = (await session.exec(
                    select(LedgerEvent).where(LedgerEvent.id > after, *filters).order_by(LedgerEvent.id)
                    .limit(_PAGE))).scalars().all()
            for event in page:
                out.writerow([_cell(name, getattr(event, name)) for name in COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(page) < _PAGE:
                return
            after = page[-1].id or after

    async def consent(self, request: Request) -> Response:
        await self.app.auth.require(request, "admin")
        body: ConsentBody = await self._body(request, ConsentBody)
        self._brand(body.brand_number)
        if problems := body.problems():
            raise Invalid("; ".join(problems))
        now = self.plugin.now()
        if body.occurred_at is not None and body.occurred_at > now:
            raise Invalid("occurred_at: is in the future")
        rules = self.plugin.policy.rules(body.brand_number)
        async with self.app.store.transaction() as session:
            event = await ledger.record(
                session, occurred_at=body.occurred_at or now, consumer_number=body.consumer, scope=rules.scope,
                brand_number=body.brand_number, action=body.action, consent_class=body.consent_class,
                method=body.method, source=body.source, consumer_action=body.consumer_action,
                disclosure_text=body.disclosure_text, disclosure_hash=body.disclosure_hash, campaign=body.campaign,
                recipient_zones=" ".join(locate(body.consumer).zones) or None,
                confirmation="none" if body.action == OPT_OUT else None, recorded_by="admin",
            )
        return JSONResponse(_event_json(event), status_code=201)

    async def opt_out(self, request: Request) -> Response:
        principal = await self.app.auth.require(request, "agent", "admin")
        body: OptOutBody = await self._body(request, OptOutBody)
        self._brand(body.brand_number)
        rules = self.plugin.policy.rules(body.brand_number)
        async with self.app.store.transaction() as session:
            event = await ledger.record(
                session, occurred_at=self.plugin.now(), consumer_number=body.consumer, scope=rules.scope,
                brand_number=body.brand_number, action=OPT_OUT, method=body.method, source=body.source,
                recipient_zones=" ".join(locate(body.consumer).zones) or None, confirmation="none",
                recorded_by=_who(principal),
            )
        return JSONResponse(_event_json(event), status_code=201)

    async def preview(self, request: Request) -> Response:
        await self.app.auth.require(request, "agent", "admin")
        body: PreviewBody = await self._body(request, PreviewBody)
        configured = self.app.config.number(body.from_)
        if configured is None:
            raise Invalid(f"from: {body.from_} is not one of this deployment's numbers")
        split = segment(body.text)
        message = OutboundMessage(id=0, provider=configured.provider, from_number=body.from_, to_number=body.to,
                                  text=body.text, message_class=body.message_class)
        async with self.app.store.session() as session:
            verdict = await gate.check(self.plugin.policy, session, message, self.plugin.now(), dry_run=True)
        return JSONResponse({
            "encoding": split.encoding, "segments": split.count, "units": split.units, "characters": len(body.text),
            "ucs2_characters": list(split.non_gsm_characters),
            "verdict": {"action": verdict.action, "code": verdict.code, "reason": verdict.reason,
                        "until": verdict.until.isoformat() if verdict.until else None,
                        "validity_seconds": verdict.validity_seconds},
        })


def _when(key: str, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{key}: not an ISO 8601 time: {value!r}") from None
    if when.tzinfo is None:
        raise Malformed(f"{key}: needs a time zone, e.g. 2026-05-01T00:00:00Z")
    return when


def _who(principal: Principal) -> str:
    return f"agent:{principal.agent_id}" if principal.role == "agent" else "admin"


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if name in _FREE_TEXT and isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # keep a consumer's "=HYPERLINK(...)" from running in a spreadsheet
    return value


def _event_json(event: LedgerEvent) -> dict[str, Any]:
    return {name: (value.isoformat() if isinstance(value, datetime) else value)
            for name, value in event.model_dump().items()}

