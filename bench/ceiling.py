"""The baseline: bare Starlette endpoints that parse the same bodies as the host and give the same answers.

A Twilio webhook is a form answered with empty TwiML; an OpenMarket webhook is JSON answered with an empty
200. Every inbound figure the benchmark prints is a ratio against one of these, measured in the same run.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def twilio(request: Request) -> Response:
    await request.form()
    return Response(EMPTY_TWIML, media_type="text/xml")


async def openmarket(request: Request) -> Response:
    await request.json()
    return Response(b"", status_code=200)


app = Starlette(routes=[Route("/webhooks/twilio/inbound", twilio, methods=["POST"]),
                        Route("/webhooks/openmarket/inbound", openmarket, methods=["POST"])])
