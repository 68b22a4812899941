"""The official Twilio library alone, as the plugin sets it up, posting to a fake Twilio from N threads.

    python bench/twilio_library.py FAKE_URL THREADS SECONDS     # prints {"messages": n, "seconds": s}

This is the most the plugin's thread-per-request client can send from one process, with no host around it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from smsconnector_twilio.client import make_client
from smsconnector_twilio.settings import Settings

from harness import ACCOUNT_SID, AUTH_TOKEN


def main(url: str, threads: int, seconds: float) -> None:
    client = make_client(Settings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=url),
                         pool_size=threads)
    sent = [0] * threads
    stop = threading.Event()

    def work(n: int) -> None:
        while not stop.is_set():
            client.messages.create(to=f"+1415{5550000 + n:07d}", from_="+15555550100", body="Your order ships today.")
            sent[n] += 1

    with ThreadPoolExecutor(threads) as pool:
        start = time.monotonic()
        futures = [pool.submit(work, n) for n in range(threads)]
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()
        elapsed = time.monotonic() - start
    print(json.dumps({"messages": sum(sent), "seconds": elapsed}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
