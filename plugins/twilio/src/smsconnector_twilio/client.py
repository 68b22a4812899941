"""The official Twilio client, set up for a server that keeps many sends in flight.

One :class:`twilio.rest.Client` per account, shared by every send: its ``requests`` session pools the
connections. The library is synchronous, so calls run in worker threads (see ``send.py``); the pool is sized
to the number of calls allowed in flight so that no thread waits for a connection or opens a throw-away one.

The environment's proxy and CA-bundle settings (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ...)
are read once, when the client is made, rather than by ``requests`` on every call (``trust_env``), which
scanned the whole environment per message and cost about a third of the client's throughput. A change to
them takes effect at the next start.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from .settings import Settings

#: The library logs each request's URL and headers at INFO; the plugin's own one line per send is enough,
#: so this logger starts at WARNING unless the deployment's logging configuration says otherwise.
HTTP_LOG = logging.getLogger("smsconnector_twilio.http")
#: Where the library sends the plugin's calls (messages, phone numbers) when no ``base_url`` is set.
DEFAULT_API_URL = "https://api.twilio.com"


class PooledHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` with a connection pool of ``pool_size``, a timeout, and an optional base URL.

    ``base_url`` sends every request to another host (a fake Twilio in tests) while keeping path and query.
    Rewriting here, in the ``http_client`` the library lets callers supply, covers every Twilio domain
    (api, messaging, ...) and relies on no library internals, unlike assigning ``client.api.base_url``,
    which reaches one cached domain object and nothing else.

    The proxies are the ones the environment names, at construction, for ``base_url`` or else
    ``api.twilio.com`` (where every call the plugin makes goes), and serve every request: ``NO_PROXY`` is
    judged for that host alone.
    """

    def __init__(self, *, pool_size: int, timeout: float, base_url: str | None = None) -> None:
        if HTTP_LOG.level == logging.NOTSET:
            HTTP_LOG.setLevel(logging.WARNING)
        super().__init__(pool_connections=True, timeout=timeout, logger=HTTP_LOG)
        assert self.session is not None
        # No urllib3 retries: the host's sender owns retrying, with backoff and an attempt budget.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._base = urlsplit(base_url) if base_url else None
        self.session.trust_env = False
        self.session.proxies = get_environ_proxies(base_url or DEFAULT_API_URL)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._last = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Send one request (to ``base_url`` when set) and remember its response for this thread."""
        if self._base is not None:
            parts = urlsplit(url)
            url = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, ""))
        self._last.response = None
        response = super().request(method, url, *args, **kwargs)
        self._last.response = response
        return response

    def last_response(self) -> Response | None:
        """The response this thread received last: the library's exceptions drop its headers (Retry-After)."""
        return getattr(self._last, "response", None)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def make_client(settings: Settings, *, pool_size: int) -> Client:
    """A client for the configured account, authenticated with the API key when there is one."""
    username, password = settings.credentials()
    http_client = PooledHttpClient(pool_size=pool_size, timeout=settings.timeout_seconds,
                                   base_url=settings.api_base_url)
    # Credentials are explicit, so of the TWILIO_* variables only TWILIO_EDGE/TWILIO_REGION still apply.
    return Client(username, password, account_sid=settings.account_sid, http_client=http_client)


def close_client(client: Client) -> None:
    """Close the client's pooled connections."""
    http_client = client.http_client
    if isinstance(http_client, PooledHttpClient):
        http_client.close()
