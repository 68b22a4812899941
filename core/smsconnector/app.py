"""The host: plugins, store, sender and the HTTP app that providers and agents talk to."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from . import api, assignment, idempotency, inbound, reassembly, sessions, status, untrusted, web
from .api.replies import Replies
from .auth import Auth
from .config import Config
from .errors import (
    MethodNotAllowed,
    PluginError,
    RequestRejected,
    SmsConnectorError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from .events import EventBus
from .inbox import Inbox
from .live import LiveEvents
from .messages import InboundMessage, StatusUpdate, utcnow
from .metrics import Metrics, scrape_allowed
from .plugins import OPT_IN, Hooks, PluginInfo, load_plugins
from .processing import InboxProcessor
from .sender import Sender
from .store import Store, notify
from .store.db import pending_migrations
from .store.models import OutboxEntry, SegmentGroup
from .store.notify import Listener
from .webhooks import WebhookKind, WebhookRequest

log = logging.getLogger(__name__)
#: the methods that reach the webhook handler, which then accepts only those the provider's plugin declares
#: (``smsconnector_webhook_methods``) and answers 405 naming them to the rest
WEBHOOK_ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: how long a status report for an unknown message is kept in case its send is recorded late
HELD_STATUS_LIFETIME = timedelta(days=1)
#: allocations between two collections of the youngest generation while serving (Python's default is 700).
#: Under load dozens of webhooks are in flight at once, each holding a few hundred young objects while it waits
#: for its commit, so at the default the collector ran about once a webhook and walked all of them every time:
#: about a tenth of a webhook's CPU. Reference counting frees nearly everything anyway; only reference cycles
#: wait for the collector, and at most this many allocations long.
YOUNG_COLLECTION_THRESHOLD = 10_000


class App:
    """One smsconnector deployment in one process; an ASGI application.

    Every hook receives it as ``app``: plugins read ``app.config``, open transactions with
    ``app.store.transaction()``, and call other hooks through ``app.hooks``.
    """

    def __init__(self, config: Config, *, plugins: Sequence[tuple[str, Any]] = ()) -> None:
        self.config = config
        self.pm, self.plugin_infos = load_plugins(config.plugins.disabled, enabled=config.plugins.enabled,
                                                  extra=plugins)
        self.hooks = Hooks(self.pm, self)
        self.events = EventBus()
        self.store = Store(config.database_url)
        self.store.on_commit = self.events.publish
        self.inbox = Inbox(self.store, timeout=config.inbound.timeout_seconds)
        self.replies = Replies(self.store)
        self.processor = InboxProcessor(self)
        self.sender = Sender(self)
        self.auth = Auth(self)
        self.metrics = Metrics()
        self.events.subscribe(self.sender.on_event)
        self.live = LiveEvents(self)
        #: wakes this process's processor, sender and live events when another process commits work for them
        self.listener = Listener(self.store)
        notify.install(self.store)
        self.hooks.configure()
        self.routes: list[BaseRoute] = [
            Route("/webhooks/{provider}/inbound", self._inbound_webhook, methods=WEBHOOK_ROUTE_METHODS),
            Route("/webhooks/{provider}/status", self._status_webhook, methods=WEBHOOK_ROUTE_METHODS),
            Route("/healthz", self._health, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            *api.routes(self),
            *web.routes(),
            *self.hooks.routes(),
        ]
        self._asgi = Starlette(routes=self.routes, lifespan=self._lifespan,
                               exception_handlers={SmsConnectorError: self._error_response,
                                                   HTTPException: _http_error_response,
                                                   ClientDisconnect: _client_gone})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    def plugin(self, name: str) -> Any:
        """The registered plugin object named ``name`` (``None`` when it is not enabled)."""
        return self.pm.get_plugin(name)

    def plugins(self) -> list[PluginInfo]:
        return list(self.plugin_infos)

    def upgrade_database(self) -> None:
        """Apply the host's and every enabled plugin's pending migrations (blocking)."""
        self.store.upgrade(self.hooks.migrations())

    def public_url(self, path: str) -> str:
        """The URL providers reach ``path`` at (for status callbacks); needs ``public_url`` configured."""
        base = self.config.public_url or "http://127.0.0.1:8000"
        return base + path

    # -- lifecycle -------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with self.running(serving=True, working=self.config.worker.in_server):
            # Everything loaded so far (modules, mappers, plugins) lives as long as the process: out of the
            # collector's sight, a full collection under load takes a few ms instead of up to 90 ms, which was
            # most of a webhook's p99.
            gc.freeze()
            previous = gc.get_threshold()
            gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *previous[1:])
            try:
                yield
            finally:
                gc.set_threshold(*previous)

    @contextlib.asynccontextmanager
    async def running(self, *, serving: bool, working: bool) -> AsyncIterator[None]:
        """The host's lifetime: the database checked, the plugins started and, at the end, everything stopped.

        ``serving``: the process answers HTTP, so agents' event streams are fed. ``working``: it also does the
        background work (routing the inbox, draining the outbox, the upkeep). ``smsconnector serve`` serves and,
        unless ``[worker] in_server`` is off, works; ``smsconnector worker`` only works, and since no webhook or
        reply in its own process wakes it, other processes' commits do (PostgreSQL's LISTEN/NOTIFY,
        :mod:`.store.notify`), and it looks for work every ``[worker] poll_interval_seconds`` besides.
        """
        pending = await asyncio.to_thread(pending_migrations, self.store.sync_url, self.hooks.migrations())
        if pending:
            raise SmsConnectorError(
                f"the database at {self.store.sync_url.render_as_string(hide_password=True)} needs {pending} "
                "migration(s): run `smsconnector db upgrade` (or `smsconnector serve --upgrade`)")
        await self.hooks.startup()
        async with self.store.transaction() as session:
            await api.ensure_skills(session, (number.skill for number in self.config.numbers))
        poll = None if serving else self.config.worker.poll_seconds(self.store.dialect)
        if serving:
            for name in OPT_IN.keys() & {info.name for info in self.plugin_infos if info.enabled}:
                log.warning("plugin '%s' is enabled ([plugins] enabled): %s", name, OPT_IN[name])
            await self.live.start()
            self.listener.on(notify.EVENTS, self.live.on_notify)
        maintenance = None
        if working:
            self.processor.start(poll_seconds=poll)
            self.listener.on(notify.INBOX, self.processor.wake)
            if self.config.sender.enabled:
                self.sender.start(poll_seconds=poll)
                self.listener.on(notify.OUTBOX, self.sender.wake)
            maintenance = asyncio.create_task(self._maintain(), name="smsconnector-maintenance")
        self.listener.start()
        try:
            yield
        finally:
            if maintenance is not None:
                maintenance.cancel()
                await asyncio.gather(maintenance, return_exceptions=True)
            await self.listener.stop()
            await self.live.stop()
            await self.sender.stop()
            await self.processor.stop()
            await self.inbox.close()
            await self.replies.close()
            await self.hooks.shutdown()
            await self.store.close()

    async def _maintain(self) -> None:
        """Background upkeep: timed-out concatenated messages, early status reports, old inbox entries,
        idempotency keys and expired page sessions, the skill queues, and the backlog gauges (for a worker's
        metrics, which no request refreshes)."""
        while True:
            try:
                await self.measure_backlogs()
                await self.expire_segments()
                await self.processor.prune()
                await idempotency.prune(self.store, retention_hours=self.config.api.idempotency_retention_hours)
                await sessions.prune(self.store)
                async with self.store.transaction() as session:
                    await status.release_all(self, session, forget_after=HELD_STATUS_LIFETIME)
            except Exception:
                log.exception("maintenance failed; trying again")
            try:
                async with self.store.transaction() as session:
                    await assignment.sweep(session)
            except Exception:
                log.exception("draining the skill queues failed; trying again")
            await asyncio.sleep(min(5.0, *(p.reassembly_timeout_seconds / 4 for p in self.config.providers.values()))
                                if self.config.providers else 5.0)

    async def expire_segments(self) -> int:
        """Deliver, marked incomplete, every concatenated message whose parts stopped arriving; how many."""
        delivered = 0
        async with self.store.transaction() as session:
            providers = (await session.exec(
                select(SegmentGroup.provider).where(SegmentGroup.completed_at.is_(None)).distinct()
            )).scalars().all()
            for provider in providers:
                timeout = self.config.provider(provider).reassembly_timeout_seconds
                for whole in await reassembly.expire(session, provider, utcnow() - timedelta(seconds=timeout)):
                    if await inbound.store(self, session, whole) is inbound.Outcome.STORED:
                        delivered += 1
        return delivered

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _inbound_webhook(self, request: Request) -> Response:
        return await self._webhook(request, "inbound")

    async def _status_webhook(self, request: Request) -> Response:
        return await self._webhook(request, "status")

    async def _webhook(self, request: Request, kind: WebhookKind) -> Response:
        provider = request.path_params["provider"]
        allowed = self.hooks.webhook_methods(provider)
        if request.method not in allowed:
            raise MethodNotAllowed(f"{provider} webhooks are not sent with {request.method}", allowed=allowed)
        started = time.perf_counter()
        body = await self.read_body(request)
        webhook = WebhookRequest(provider=provider, kind=kind, method=request.method, url=self._request_url(request),
                                 headers=request.headers, body=body,
                                 client=request.client.host if request.client else None)
        received = await self.hooks.receive(provider, webhook)
        items = [self._normalize(provider, event) for event in received.events]
        # Persist before acknowledging: the reply goes out only after the events are committed to the inbox.
        timeout = self.config.inbound.timeout_seconds
        try:
            entry_ids = await self.inbox.put(provider, items)
        except TimeoutError:
            raise Unavailable(f"not stored within {timeout:g} s") from None
        retries = 0
        for item, entry_id in zip(items, entry_ids, strict=True):
            if entry_id is None:
                retries += 1
                if isinstance(item, InboundMessage):
                    self.metrics.inbound.labels(provider, inbound.Outcome.DUPLICATE.value).inc()
        self.processor.stored(new=retries < len(items))
        # What and whence, never the content: the provider's delivery id ties this line to its own logs.
        log.debug("%s %s webhook stored: %d event(s), %d of them sent before (delivery %s)", provider, kind,
                  len(items), retries, received.delivery_id or "not given")
        if self.config.inbound.acknowledge == "routed":
            # Stored already, so a provider is answered 2xx all the same if routing takes longer than its wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout - (time.perf_counter() - started)):
                    await self.processor.routed([i for i in entry_ids if i is not None])
        self.metrics.webhook_seconds.labels(provider, kind).observe(time.perf_counter() - started)
        return Response(received.reply_body, status_code=received.reply_status,
                        media_type=received.reply_media_type)

    def _normalize(self, provider: str, event: Any) -> InboundMessage | StatusUpdate:
        item = self.hooks.normalize(provider, event)
        if item is None:
            raise PluginError(provider, "received an event that no plugin normalizes")
        # Mended or refused at the door, before anything is stored, for every provider alike: what a database
        # cannot hold (a NUL, an id longer than its column) would otherwise fail the routing later, or only on
        # PostgreSQL; a part that can never fit would only fail later too.
        item = untrusted.storable(item)
        if isinstance(item, InboundMessage) and item.segment is not None:
            reassembly.checked(item)
        elif isinstance(item, StatusUpdate) and item.segment is not None:
            status.check_part(item)
        return item

    async def read_body(self, request: Request, *, limit: int | None = None) -> bytes:
        """The request body; :class:`TooLarge` (413) past ``limit`` (``max_body_bytes``), without reading the rest."""
        limit = self.config.max_body_bytes if limit is None else limit
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit():  # not "²", which is a digit to str.isdigit and not to int()
            if len(declared) > 18 or int(declared) > limit:  # int() reads no more than 4,300 digits
                raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
            return await request.body()  # the server reads no more than the declared length
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _request_url(self, request: Request) -> str:
        """The URL the provider called, which is what it signed; not the socket's URL behind a proxy."""
        if self.config.public_url:
            # Path and query as ``request.url`` gives them, without parsing a whole URL for every webhook.
            path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
            query = request.scope.get("query_string", b"").decode()
            return self.config.public_url + path + (f"?{query}" if query else "")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if self.config.trust_forwarded_headers:
            proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
            host = request.headers.get("x-forwarded-host", request.headers.get("host", "")).split(",")[0].strip()
            return f"{proto}://{host}{path}"
        return str(request.url)

    async def _health(self, request: Request) -> Response:
        async with self.store.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return JSONResponse({"status": "ok"})

    async def _metrics(self, request: Request) -> Response:
        token = self.config.metrics.token
        if not scrape_allowed(request.headers.get("authorization", ""), token and token.get_secret_value()):
            raise Unauthenticated("the metrics need the [metrics] token as a bearer token")
        await self.measure_backlogs()
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def measure_backlogs(self) -> None:
        """Set the gauges read from the database: the outbox depth, the messages waiting for a retry (by provider,
        with the oldest one's age) and the inbox backlog."""
        async with self.store.session() as session:
            per_provider = (await session.exec(_OUTBOX_BY_PROVIDER)).all()
        now = utcnow()
        self.metrics.outbox_depth.set(sum(depth for _, depth, _, _ in per_provider))
        self.metrics.set_retrying({provider: (retrying, (now - oldest).total_seconds() if oldest else 0.0)
                                   for provider, _, retrying, oldest in per_provider})
        self.metrics.inbox_pending.set(await self.processor.pending())

    async def _error_response(self, request: Request, exc: Exception) -> Response:
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")  # the template, so labels stay few
        if isinstance(exc, RequestRejected):
            # The reason names what was wrong, never the body: message text stays out of logs, and so do the values
            # a reason may echo back to the sender (a number that is not one).
            log.warning("%s %s refused with %s %s: %s", request.method, request.url.path, exc.status, exc.code,
                        untrusted.loggable(exc.reason))
            self.metrics.rejected.labels(path, exc.code).inc()
            return JSONResponse({"error": exc.code, "detail": exc.reason}, status_code=exc.status,
                                headers=dict(exc.headers))
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": "internal", "detail": str(exc)}, status_code=500)


#: per provider: the outbox rows, those waiting for a retry (an attempt failed), and the oldest of those's start
_OUTBOX_BY_PROVIDER = (
    select(OutboxEntry.provider, func.count(), func.count().filter(OutboxEntry.attempts > 0),
           func.min(OutboxEntry.created_at).filter(OutboxEntry.attempts > 0))
    .group_by(OutboxEntry.provider)
)

async def _http_error_response(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, method not allowed) in the same JSON shape as ours."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "rejected")
    return JSONResponse({"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that went away before its body was read, or was cut off for sending it too slowly: nothing was
    stored, and there is nobody left to answer (the response goes nowhere)."""
    log.info("%s %s: the client went away before its body was read", request.method, request.url.path)
    return Response(status_code=400)
