"""The outbound proxy a provider plugin's API calls go through, as the environment names it.

``HTTPS_PROXY``, ``HTTP_PROXY`` and ``ALL_PROXY`` (in either case) name a proxy, ``NO_PROXY`` exempts hosts,
as curl and requests read them. A plugin reads them once, when it makes its client, for the one API host it
calls, rather than on every request.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit


def environment_proxy(url: str) -> str | None:
    """The proxy for requests to ``url``'s scheme and host, or ``None``: none named, or ``NO_PROXY`` exempts the
    host. Credentials in the proxy's URL are kept (an HTTP client sends them to the proxy alone)."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if proxies.get("no") and urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    named = proxies.get(parts.scheme) or proxies.get("all")
    if not named:
        return None
    return named if "://" in named else f"http://{named}"
