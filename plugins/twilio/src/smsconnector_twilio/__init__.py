"""Twilio for smsconnector: signed webhooks in, the official client out, and number set-up.

Enable it with a ``[plugins.twilio]`` section (see the README); ``smsconnector_twilio.fake`` is a faithful
stand-in for Twilio's REST API that tests and benchmarks can run on loopback.
"""

from .hooks import TwilioPlugin
from .settings import Settings

__all__ = ["Settings", "TwilioPlugin"]
