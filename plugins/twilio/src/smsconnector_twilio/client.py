"""The official Twilio client, set up for a server that keeps many sends in flight.

One :class:`twilio.rest.Client` per account, shared by every call. The library offers each call in an
``_async`` form that awaits the ``AsyncHttpClient`` it is given; the plugin gives it :class:`PooledHttpClient`,
one pooled aiohttp session, so a send waits on Twilio on the event loop itself rather than in a worker
thread (the library's synchronous client, run from a thread pool, spent most of its time contending for the
interpreter with the loop: the same sends, measured side by side, went about three times slower).

The environment's proxy and CA-bundle settings (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ...)
are read once, when the client is made, not on every call. A change to them takes effect at the next start.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import ssl
from base64 import b64encode
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from smsconnector.plugin import environment_proxy

from .settings import Settings

#: The library logs each request's URL and headers at INFO; the plugin's own one line per send is enough,
#: so this logger starts at WARNING unless the deployment's logging configuration says otherwise.
HTTP_LOG = logging.getLogger("smsconnector_twilio.http")
#: Where the library sends the plugin's calls (messages, phone numbers) when no ``base_url`` is set.
DEFAULT_API_URL = "https://api.twilio.com"
#: What a call that never got Twilio's answer raises: refused, reset or timed out.
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError)

#: The response the current task received last (see :meth:`PooledHttpClient.last_response`).
_last_response: contextvars.ContextVar[Response | None] = contextvars.ContextVar("twilio_last_response",
                                                                                 default=None)


class PooledHttpClient(AsyncHttpClient):
    """The library's async HTTP client over one aiohttp session of ``pool_size`` connections, with a timeout
    and an optional base URL.

    ``base_url`` sends every request to another host (a fake Twilio in tests) while keeping path and query.
    Rewriting here, in the ``http_client`` the library lets callers supply, covers every Twilio domain
    (api, messaging, ...) and relies on no library internals.

    The proxy is the one the environment names, at construction, for ``base_url`` or else ``api.twilio.com``
    (where every call the plugin makes goes), and serves every request: ``NO_PROXY`` is judged for that host
    alone. Must be made inside the event loop that will use it.
    """

    def __init__(self, *, pool_size: int, timeout: float, base_url: str | None = None) -> None:
        if HTTP_LOG.level == logging.NOTSET:
            HTTP_LOG.setLevel(logging.WARNING)
        super().__init__(logger=HTTP_LOG, is_async=True, timeout=timeout)
        self._base = urlsplit(base_url) if base_url else None
        self._proxy = environment_proxy(base_url or DEFAULT_API_URL)
        # No retries here: the host's sender owns retrying, with backoff and an attempt budget.
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, ssl=_ssl_context()), trust_env=False)

    async def request(self, method: str, url: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        """Send one request (to ``base_url`` when set) as the library's synchronous client would: list values
        repeat their key, a JSON content type sends ``data`` as JSON, anything else as a form."""
        if self._base is not None:
            parts = urlsplit(url)
            url = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, ""))
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = _basic(*auth)
        body: bytes | None = None
        if data is not None:
            if headers.get("Content-Type", "").endswith("json"):
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method, "url": url, "params": params, "headers": headers})
        _last_response.set(None)
        async with self.session.request(
            method.upper(), url, params=_pairs(params), data=body, headers=headers, proxy=self._proxy,
            allow_redirects=allow_redirects,
            timeout=self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
        ) as answer:
            response = Response(answer.status, await answer.text(), answer.headers)
        if self.logger.isEnabledFor(logging.INFO):
            self.log_response(response.status_code, response)
        _last_response.set(response)
        return response

    def last_response(self) -> Response | None:
        """The response the current task received last: the library's exceptions drop its headers
        (Retry-After), so a caller that catches one reads them here."""
        return _last_response.get()

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.session.close()


def make_client(settings: Settings, *, pool_size: int) -> Client:
    """A client for the configured account, authenticated with the API key when there is one; its calls are
    the library's ``_async`` ones. Call inside the event loop that will use it."""
    username, password = settings.credentials()
    http_client = PooledHttpClient(pool_size=pool_size, timeout=settings.timeout_seconds,
                                   base_url=settings.api_base_url)
    # Credentials are explicit, so of the TWILIO_* variables only TWILIO_EDGE/TWILIO_REGION still apply.
    return Client(username, password, account_sid=settings.account_sid, http_client=http_client)


async def close_client(client: Client) -> None:
    """Close the client's pooled connections."""
    http_client = client.http_client
    if isinstance(http_client, PooledHttpClient):
        await http_client.close()


def _pairs(params: dict[str, object] | None) -> list[tuple[str, str]] | None:
    """Query parameters as pairs, a list value repeating its key (the library hands over lists and numbers)."""
    if not params:
        return None
    return [(key, str(item)) for key, value in params.items()
            for item in (value if isinstance(value, list) else [value])]


def _basic(user: str, password: str) -> str:
    """An HTTP Basic credentials header value (latin-1, as the library's synchronous client sends it)."""
    return "Basic " + b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")


def _ssl_context() -> ssl.SSLContext:
    """The system's CA certificates, or the bundle ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` names (the
    variables the library's synchronous client honours)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()

