"""The baseline: a bare Starlette endpoint that parses the same Twilio form body and answers the same empty TwiML.

Every figure the benchmark prints is a ratio against this, measured in the same run on the same machine.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def inbound(request: Request) -> Response:
    await request.form()
    return Response(EMPTY_TWIML, media_type="text/xml")


app = Starlette(routes=[Route("/webhooks/twilio/inbound", inbound, methods=["POST"])])
