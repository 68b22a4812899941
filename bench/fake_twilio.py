"""The fake Twilio of the Twilio plugin, served alone (``uvicorn fake_twilio:app``) so it never shares the host's GIL.

``FAKE_TWILIO_LATENCY`` adds seconds before each answer, as Twilio's own API takes time to reply.
"""

from __future__ import annotations

import os

from smsconnector_twilio.fake import FakeTwilio

fake = FakeTwilio(os.environ["FAKE_TWILIO_ACCOUNT_SID"], os.environ["FAKE_TWILIO_AUTH_TOKEN"])
fake.latency = float(os.environ.get("FAKE_TWILIO_LATENCY", "0"))
app = fake.app
