"""OpenMarket's Global SMS API (v4, HTTP) for smsconnector.

Receives MOs and delivery receipts at ``/webhooks/openmarket/inbound`` and ``/status`` (Basic credentials,
optionally an allow-list of networks), joins the parts of long MOs, and sends with the v4 MT JSON API.
:mod:`smsconnector_openmarket.fake` is a stand-in OpenMarket on loopback for tests and benchmarks.
"""

from .hooks import OpenMarket

__all__ = ["OpenMarket"]
