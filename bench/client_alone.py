"""A provider plugin's own client alone, with no host around it, sending to its fake provider for a while.

    python bench/client_alone.py twilio FAKE_URL IN_FLIGHT SECONDS      # the official twilio library's async
                                                                         # calls, as the plugin sets it up
    python bench/client_alone.py openmarket FAKE_URL IN_FLIGHT SECONDS  # the plugin's aiohttp client and send()

Either way IN_FLIGHT sends at once on one event loop.
Prints ``{"messages": n, "seconds": s}``: the most that client sends from one process on this machine, which
bounds what the host can send through it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from harness import ACCOUNT_SID, AUTH_TOKEN, OPENMARKET

from smsconnector.messages import OutboundMessage

TEXT = "Your order ships today."


async def twilio(url: str, in_flight: int, seconds: float) -> int:
    from smsconnector_twilio.client import close_client, make_client
    from smsconnector_twilio.settings import Settings

    settings = Settings.model_validate({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": url})
    client = make_client(settings, pool_size=in_flight)
    sent = 0
    deadline = time.monotonic() + seconds

    async def work(n: int) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            await client.messages.create_async(to=f"+1415{5550000 + n:07d}", from_="+15555550100", body=TEXT)
            sent += 1

    try:
        await asyncio.gather(*(work(n) for n in range(in_flight)))
    finally:
        await close_client(client)
    return sent


async def openmarket(url: str, in_flight: int, seconds: float) -> int:
    from smsconnector_openmarket.client import new_client, send
    from smsconnector_openmarket.settings import Settings

    settings = Settings.model_validate({**OPENMARKET, "api_base_url": url})
    client = new_client(settings)
    assert client is not None
    sent = 0
    deadline = time.monotonic() + seconds

    async def work(n: int) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            message = OutboundMessage(id=sent, provider="openmarket", from_number="+15555550100",
                                      to_number=f"+1415{5550000 + n:07d}", text=TEXT)
            await send(client, settings, message, receipt_url="https://sms.bench.example/webhooks/openmarket/status")
            sent += 1

    try:
        await asyncio.gather(*(work(n) for n in range(in_flight)))
    finally:
        await client.aclose()
    return sent


def main(provider: str, url: str, in_flight: int, seconds: float) -> None:
    start = time.monotonic()
    sent = asyncio.run((twilio if provider == "twilio" else openmarket)(url, in_flight, seconds))
    print(json.dumps({"messages": sent, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
