"""A provider plugin's own client alone, with no host around it, sending to its fake provider for a while.

    python bench/client_alone.py twilio FAKE_URL IN_FLIGHT SECONDS      # the official twilio library, as the
                                                                         # plugin sets it up, from IN_FLIGHT threads
    python bench/client_alone.py openmarket FAKE_URL IN_FLIGHT SECONDS  # the plugin's httpx client and send(),
                                                                         # IN_FLIGHT sends at once on one loop
Prints ``{"messages": n, "seconds": s}``: the most that client sends from one process on this machine, which
bounds what the host can send through it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import ACCOUNT_SID, AUTH_TOKEN, OPENMARKET

from smsconnector.messages import OutboundMessage

TEXT = "Your order ships today."


def twilio(url: str, in_flight: int, seconds: float) -> int:
    from smsconnector_twilio.client import make_client
    from smsconnector_twilio.settings import Settings

    settings = Settings.model_validate({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": url})
    client = make_client(settings, pool_size=in_flight)
    sent = [0] * in_flight
    stop = threading.Event()

    def work(n: int) -> None:
        while not stop.is_set():
            client.messages.create(to=f"+1415{5550000 + n:07d}", from_="+15555550100", body=TEXT)
            sent[n] += 1

    with ThreadPoolExecutor(in_flight) as pool:
        futures = [pool.submit(work, n) for n in range(in_flight)]
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()
    return sum(sent)


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

    async with client:
        await asyncio.gather(*(work(n) for n in range(in_flight)))
    return sent


def main(provider: str, url: str, in_flight: int, seconds: float) -> None:
    start = time.monotonic()
    sent = twilio(url, in_flight, seconds) if provider == "twilio" else asyncio.run(openmarket(url, in_flight, seconds))
    print(json.dumps({"messages": sent, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
