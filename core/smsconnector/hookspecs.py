"""The hook contract: everything a plugin may do, in the order a message meets it.

Every hook is called with keyword arguments; an implementation may accept any subset of them. Arguments
are only ever added, never renamed or removed.

**Colour.** pluggy is synchronous. An implementation may return a value or an awaitable; the host awaits
results. In a hook that stops at the first non-None result, decline by returning ``None`` *synchronously*
(check ``provider`` before creating a coroutine): a coroutine is not ``None``, so it would always win.

**Transactions.** Hooks that receive ``session`` run inside the host's open database transaction for the
message at hand: write only through that session, and everything commits (or rolls back) together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluggy import HookspecMarker

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel.ext.asyncio.session import AsyncSession
    from starlette.routing import BaseRoute

    from .app import App
    from .decisions import ConsentSignal, Routing, SegmentPolicy, Verdict
    from .messages import InboundMessage, OutboundMessage, SendResult, StatusUpdate
    from .store.models import Conversation
    from .webhooks import Received, WebhookRequest

_spec = HookspecMarker("smsconnector")

# ---------------------------------------------------------------------------------------------------------
# Start-up and shut-down
# ---------------------------------------------------------------------------------------------------------


@_spec
def smsconnector_configure(app: App) -> None:
    """Read and validate this plugin's configuration, once, before the host serves anything.

    Read your section with ``app.config.plugin(name)`` (a dict from ``[plugins.<name>]`` in the TOML file
    and ``SMSCONNECTOR_PLUGINS__<NAME>__<KEY>`` variables). Keep what you parsed on your plugin object.

    :param app: the host.
    :raises ConfigError: naming the key (``plugins.twilio.auth_token``) when a value is missing or wrong;
        start-up stops with a ``PluginConfigError`` naming your plugin and that key.

    All implementations are called. Synchronous.
    """


@_spec
def smsconnector_migrations() -> Path | None:
    """Return the folder of this plugin's Alembic revisions, when the plugin keeps tables of its own.

    Each plugin's revisions form their own branch (``branch_labels = ("<name>",)``) that depends on the
    host's; ``smsconnector db upgrade`` applies every branch.

    All results are collected. Synchronous.
    """


@_spec
def smsconnector_register_routes(app: App) -> Sequence[BaseRoute] | None:
    """Return Starlette routes this plugin serves (an entry point's trigger endpoint, an admin report).

    Routes are mounted as given; authenticate them yourself or with ``app.auth`` helpers. Webhook paths
    ``/webhooks/{provider}/...`` belong to the host: receive provider traffic through ``smsconnector_receive``.

    All results are collected. Synchronous.
    """


@_spec
def smsconnector_startup(app: App) -> Awaitable[None] | None:
    """Called once the store is open, before the first request or background work; open clients and pools
    here. Every process calls it: `serve` and each `smsconnector worker`.

    All implementations are called and awaited, in registration order.
    """


@_spec
def smsconnector_shutdown(app: App) -> Awaitable[None] | None:
    """Called when the process stops, after the last request or send; close what ``smsconnector_startup``
    opened.

    All implementations are called and awaited; one that raises is logged and the rest still run.
    """


# ---------------------------------------------------------------------------------------------------------
# Inbound: receive -> normalize -> (dedupe) -> segment policy -> route -> (store) -> 2xx
# ---------------------------------------------------------------------------------------------------------


@_spec(firstresult=True)
def smsconnector_webhook_methods(provider: str, app: App) -> Collection[str] | None:
    """Name the HTTP methods this provider's webhooks may arrive in, when it is not only ``POST``.

    Some providers call a webhook with ``GET`` and the parameters in the query string (Vonage's default,
    Twilio's when configured so). The host asks once per provider, before the first of its webhooks is
    received, and then accepts exactly these methods at ``/webhooks/{provider}/inbound`` and ``/status``;
    any other method is answered 405 with an ``Allow`` header, and nothing is stored. Whatever the method, the
    request goes through ``smsconnector_receive`` the same way: read ``request.method``, and the parameters of
    a ``GET`` from ``request.query`` (its signature, if any, covers the URL with that query string).

    :param provider: the ``{provider}`` path segment; decline (``None``) for other providers.
    :returns: method names (``{"GET", "POST"}``), or ``None`` for the default, ``POST`` only.

    Stops at the first non-None result. Synchronous.
    """


@_spec(firstresult=True)
def smsconnector_receive(provider: str, request: WebhookRequest, app: App) -> Received | Awaitable[Received] | None:
    """Authenticate a provider's webhook and split it into raw events.

    Called for every request to ``/webhooks/{provider}/inbound`` and ``/webhooks/{provider}/status``.
    Implemented by each provider plugin for its own ``provider`` name; return ``None`` (synchronously)
    for any other name.

    :param provider: the ``{provider}`` path segment.
    :param request: the request with its body and public URL (``request.kind`` says inbound or status).
    :returns: the raw events and the reply the provider expects once they are committed.
    :raises Forbidden: a signature is missing, wrong or stale (403). Nothing is stored.
    :raises Unauthenticated: credentials are missing or wrong (401). Nothing is stored.
    :raises Malformed: the body cannot be parsed (400). Nothing is stored.

    Stops at the first non-None result. May return an awaitable.
    """


@_spec(firstresult=True)
def smsconnector_normalize(provider: str, event: Any, app: App) -> InboundMessage | StatusUpdate | None:
    """Turn one raw event from ``smsconnector_receive`` into a canonical message or status update.

    Numbers become E.164; text is decoded; a part of a concatenated SMS carries its ``SegmentInfo``.

    :param provider: the provider the event came from; decline (``None``) for other providers.
    :param event: one item of ``Received.events``, in the plugin's own shape.
    :raises Malformed: the event lacks what a message needs (400); nothing of the webhook is stored.

    Stops at the first non-None result. Synchronous.
    """


@_spec(firstresult=True)
def smsconnector_segment_policy(provider: str, message: InboundMessage, app: App) -> SegmentPolicy | None:
    """Say what a part of a concatenated SMS becomes, for a provider that delivers parts.

    Called only for messages that carry ``segment``. The provider plugin gives its default; the
    deployment's ``[providers.<name>] segment_policy`` overrides it without calling this hook.

    Stops at the first non-None result; with no answer the host delivers as is. Synchronous.
    """


@_spec
def smsconnector_route_prefetch(
    messages: Sequence[InboundMessage], app: App, session: AsyncSession
) -> Awaitable[None] | None:
    """Read ahead, for a batch of consumer messages about to be routed, what your route hook will need.

    The host routes the inbox in batches, each in one transaction: it calls this once with the batch's
    messages (deduplicated, reassembled, in arrival order), then ``smsconnector_route`` for each of them in
    turn. A route hook that reads the database for every message (a consumer's consent, a pending offer)
    can read it here for all of them with one statement and keep it in ``session.info`` under a key of its
    own, then read it from there. Keep it right: whatever your hook writes in the same transaction (an
    opt-out recorded for the first of two messages from one consumer) must change or drop what you kept, so
    the next message sees it. Optional: a route hook that reads for itself needs nothing here.

    :param messages: the messages of the batch, in the order they will be routed.
    :param session: the batch's transaction; the same one ``smsconnector_route`` receives.

    All implementations are called and awaited. May return an awaitable.
    """


@_spec(firstresult=True)
def smsconnector_route(
    message: InboundMessage, conversation: Conversation | None, app: App, session: AsyncSession
) -> Routing | Awaitable[Routing | None] | None:
    """Decide where a new (deduplicated, reassembled) consumer message goes.

    Order: compliance keywords first (``tryfirst``), entry-point plugins, the built-in router last
    (``trylast``). Decline with ``None`` (synchronously when you can) to let the next plugin decide.

    The host routes the inbox in batches: it calls this for each message of a batch in arrival order, in the
    batch's one transaction, after ``smsconnector_route_prefetch``; a later message from the same consumer sees
    its conversation as the earlier one left it.

    :param message: the consumer's message.
    :param conversation: the consumer's open conversation with this brand number, if any, read under its row
        lock: no other transaction changes it until this one ends.
    :param session: the open transaction; the host commits it with the message.
    :returns: a :class:`~smsconnector.decisions.Routing`.

    Stops at the first non-None result. May return an awaitable.
    """


# ---------------------------------------------------------------------------------------------------------
# Outbound: validate -> store + outbox -> check -> send -> status
# ---------------------------------------------------------------------------------------------------------


@_spec
def smsconnector_check_outbound(
    message: OutboundMessage, app: App, session: AsyncSession
) -> Verdict | Awaitable[Verdict | None] | None:
    """Veto or defer an outbound message just before it is handed to a provider.

    The sender awaits this before *every* ``smsconnector_send``, whatever path queued the message, so
    a rule enforced here cannot be bypassed. Return ``None`` or ``Verdict("allow")`` to let it pass.

    :returns: ``Verdict.refuse(code, reason)`` to block it for good (recorded, shown to the agent);
        ``Verdict.defer(code, reason, until)`` to hold it until a later time (never dropped);
        ``Verdict("allow", validity_seconds=N)`` to bound how long the provider may hold it.

    All results are collected: any refusal wins, then the latest deferral. May return an awaitable.

    ``session`` is a transaction shared with the checks of other messages being sent at the same moment;
    if one of them fails, each is checked again in a transaction of its own, so a check may run twice for
    one send: keep its effects inside ``session``.
    """


@_spec(firstresult=True)
def smsconnector_send(provider: str, message: OutboundMessage, app: App) -> Awaitable[SendResult] | None:
    """Hand an outbound message to the provider.

    Implemented by each provider plugin for its own ``provider`` name; decline (``None``) synchronously
    for any other. Keep the event loop free: do blocking HTTP in a thread or with an async client.

    :returns: an awaitable of :class:`~smsconnector.messages.SendResult` with the provider's message id;
        ``SendResult.of_parts(ids)`` when the provider gives each part of a long message its own id and
        reports on each part under it: the host then finds the message from a report on any part, and makes
        the parts' reports its one status.
    :raises RetryableSendError: rate limits, 5xx, timeouts, connection errors; retried with backoff.
    :raises PermanentSendError: the provider refuses for good; recorded with ``code``. Set
        ``opted_out=True`` when the refusal is because the consumer opted out.

    Stops at the first non-None result.
    """


@_spec(firstresult=True)
def smsconnector_find_sent(
    provider: str, message: OutboundMessage, since: datetime, app: App
) -> Awaitable[SendResult | None] | None:
    """Look up the provider's record of an outbound message it may have accepted since ``since``.

    The sender marks a message as attempted just before handing it to ``smsconnector_send``. When a message
    still in the outbox carries that mark, its previous sender stopped (a crash, a kill, a timeout) before
    it recorded the provider's answer; before sending it again, the sender calls this hook. Implement it when
    the provider can list what it accepted (Twilio lists messages by sender, recipient and date); decline
    (``None``) synchronously for any other provider.

    :param message: the message as it was sent: the same numbers, text and media.
    :param since: when the previous attempt was cleared to go (UTC); the provider created its record after
        that, by its own clock (allow for the clocks of two machines).
    :returns: an awaitable of the provider's record of the message as a
        :class:`~smsconnector.messages.SendResult` (its message id, status and segments), or of ``None`` when
        the provider has no such record. A message found is recorded as accepted and not sent again; one not
        found is sent again.
    :raises RetryableSendError: the provider could not be asked; the sender asks again later (an attempt).

    A provider that cannot look up its sends does not implement this hook, and the sender sends again: for
    that provider, a message in flight when its sender stopped is delivered at least once.

    Stops at the first non-None result.
    """


@_spec
def smsconnector_status_recorded(
    update: StatusUpdate, message_id: int, app: App, session: AsyncSession
) -> Awaitable[None] | None:
    """Observe a provider status update after the host applied it to the stored message.

    The host has already matched the update to ``message_id`` and never moves a message back from a
    terminal status. Use it to react to error codes (a carrier block, an opt-out code).

    All implementations are called. May return an awaitable.
    """


@_spec
def smsconnector_consent_signal(signal: ConsentSignal, app: App, session: AsyncSession) -> Awaitable[None] | None:
    """Record a consent fact learned outside the consumer's own keywords: a provider's or an entry point's.

    The host calls it when a send fails with ``PermanentSendError(opted_out=True)``. Plugins that obtain
    consent (an IVR "text me" keypress, a web form) call ``await app.hooks.consent_signal(signal, session)``
    in the transaction that acts on it, so the fact and its effect commit together. The compliance plugin
    records it in its ledger; without it, nothing is kept.

    All implementations are called. May return an awaitable.
    """
