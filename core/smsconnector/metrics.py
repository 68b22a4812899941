"""Prometheus metrics of one app, served at ``/metrics``. Labels carry providers and outcomes, never numbers or text.

With ``[metrics] token`` set, they are served only to requests bearing it, by the web app and by a worker's own
exposition server alike.
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer


class Metrics:
    """A registry per app, so several apps in one process (tests, embedding) never mix their counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter("smsconnector_inbound_messages", "Consumer messages (or parts) by outcome.",
                               ["provider", "outcome"], registry=self.registry)
        self.rejected = Counter("smsconnector_requests_rejected", "Requests refused with a 4xx, by error code.",
                                ["path", "code"], registry=self.registry)
        self.sends = Counter("smsconnector_sends", "Outbox work by result: sent, retry, failed, refused, deferred.",
                             ["provider", "result"], registry=self.registry)
        self.statuses = Counter("smsconnector_status_updates", "Provider delivery reports received.",
                                ["provider", "status"], registry=self.registry)
        self.webhook_seconds = Histogram("smsconnector_webhook_seconds", "Webhook time from body read to reply.",
                                         ["provider", "kind"], registry=self.registry,
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15))
        self.inbox_pending = Gauge("smsconnector_inbox_pending", "Provider events stored but not yet routed.",
                                   registry=self.registry)
        self.inbox_set_aside = Counter("smsconnector_inbox_set_aside", "Provider events whose routing kept failing.",
                                       ["provider"], registry=self.registry)
        self.outbox_depth = Gauge("smsconnector_outbox_depth", "Outbound messages not yet accepted by a provider.",
                                  registry=self.registry)
        self.outbox_retrying = Gauge("smsconnector_outbox_retrying",
                                     "Outbound messages waiting to be tried again after a retryable failure.",
                                     ["provider"], registry=self.registry)
        self.outbox_retrying_oldest = Gauge(
            "smsconnector_outbox_retrying_oldest_seconds",
            "Age of the oldest message waiting for a retry, since it was queued or a deferral of it ended (it fails "
            "for good at [sender] retry_for_seconds).", ["provider"], registry=self.registry)
        self._retrying_providers: set[str] = set()

    def set_retrying(self, waiting: dict[str, tuple[int, float]]) -> None:
        """Set the retry gauges from ``waiting``: per provider, how many messages wait for a retry and the oldest
        one's age in seconds. A provider seen before with none waiting now reads 0."""
        self._retrying_providers.update(waiting)
        for provider in self._retrying_providers:
            count, oldest = waiting.get(provider, (0, 0.0))
            self.outbox_retrying.labels(provider).set(count)
            self.outbox_retrying_oldest.labels(provider).set(oldest)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def scrape_allowed(authorization: str, token: str | None) -> bool:
    """Whether a request with this ``Authorization`` header may read the metrics: any when no token is set."""
    if token is None:
        return True
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


def serve_exposition(registry: CollectorRegistry, host: str, port: int, *, token: str | None) -> WSGIServer:
    """Serve ``registry`` at ``http://host:port/metrics`` from a thread of its own (a worker, which has no web app),
    to requests bearing ``token`` when one is set. Stop it with ``shutdown()`` and ``server_close()``.

    :raises OSError: the address cannot be bound.
    """
    metrics = make_wsgi_app(registry)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if scrape_allowed(environ.get("HTTP_AUTHORIZATION", ""), token):
            return metrics(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                            ("WWW-Authenticate", 'Bearer realm="smsconnector"')])
        return [b"the metrics need the [metrics] token as a bearer token\n"]

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    server = make_server(host, port, guarded, Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="smsconnector-metrics").start()
    return server


class _QuietHandler(WSGIRequestHandler):
    """No line per scrape on stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base class's name
        pass
