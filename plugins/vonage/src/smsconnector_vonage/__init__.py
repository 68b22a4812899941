"""Vonage's SMS API for smsconnector.

Receives inbound messages and delivery receipts at ``/webhooks/vonage/inbound`` and ``/status`` (GET, form or
JSON, signed with the account's signature secret), joins the parts of long messages, and sends through the SMS
REST API with one id per part. :mod:`smsconnector_vonage.fake` is a stand-in Vonage on loopback for tests.
"""

from .hooks import VonagePlugin

__all__ = ["VonagePlugin"]
