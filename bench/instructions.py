"""Instructions a webhook costs the host against a request to the ceiling, counted by valgrind: a figure the
machine's drift does not move.

    python bench/instructions.py                 # about 3 minutes on two cores
    python bench/instructions.py --requests 1000
    python bench/instructions.py --retries       # the measured requests repeat stored ones (a storm)

The wall-clock share of the ceiling moves by a third from one minute to the next on a shared machine; the
instructions each side executes do not, so this is the figure to compare two versions of the host by. Both
apps are driven in process through ASGI with the same signed Twilio webhooks, 32 at a time: no sockets and no
uvicorn, the part both sides share. The host runs as a web process (``serve --no-worker``): each webhook is
checked, normalized and stored in its inbox on SQLite, and none is routed. Each side runs twice under
callgrind, once with the measured requests after the warm-up and once without, and the difference is divided
by their number, so start-up, imports and preparing the requests cancel out.

Instructions are not time. The ceiling's are mostly one tight parsing loop and the host's are spread over
many more lines of code, so the host gets through fewer of them a microsecond: its wall-clock share of the
ceiling is lower than the ratio printed here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import harness
from run import BRAND, twilio_inbound

#: requests sent before the measured ones, in both runs of a side
WARM_UP = 1000
CONCURRENCY = 32

Request = tuple[str, list[tuple[bytes, bytes]], bytes]


def asgi_request(line: str) -> Request:
    """(path, headers, body) of a wrk replay line, as uvicorn would hand them to the app."""
    _method, path, *headers, body = line.rstrip("\n").split("\t")
    encoded = body.encode()
    pairs = [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(encoded)).encode())]
    pairs += [(name.lower().encode(), value.encode()) for name, value in (h.split(": ", 1) for h in headers)]
    return path, pairs, encoded


async def _call(app: Any, request: Request, statuses: list[int]) -> None:
    path, headers, body = request
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)


async def _drive(app: Any, requests: list[Request]) -> None:
    statuses: list[int] = []
    pending = iter(requests)

    async def connection() -> None:
        for request in pending:
            await _call(app, request, statuses)

    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    refused = len(statuses) - statuses.count(200)
    if refused or len(statuses) != len(requests):
        sys.exit(f"{refused} of {len(requests)} requests were not answered 200")


async def _serve(app: Any, requests: list[Request], *, lifespan: bool) -> None:
    """Start ``app`` (its lifespan, if it has one to run), send ``requests``, stop it."""
    if not lifespan:
        await _drive(app, requests)
        return
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    running = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    if (await outbox.get())["type"] != "lifespan.startup.complete":
        sys.exit("the host did not start")
    await _drive(app, requests)
    await inbox.put({"type": "lifespan.shutdown"})
    await running


def child(side: str, measured: int, prepared: int, retries: bool) -> None:
    """Run in valgrind: prepare ``prepared`` webhooks, send the warm-up and then ``measured`` of them (with
    ``retries``, the first ``measured`` of the warm-up again: a provider retrying what is already stored)."""
    import uvloop

    if side == "host":
        from smsconnector.asgi import app
    else:
        from ceiling import app
    requests = [asgi_request(twilio_inbound(n)[1]) for n in range(prepared)]
    again = requests[:measured] if retries else requests[WARM_UP:WARM_UP + measured]
    uvloop.run(_serve(app, requests[:WARM_UP] + again, lifespan=side == "host"))


def count(valgrind: str, side: str, measured: int, prepared: int, env: dict[str, str], retries: bool) -> int:
    """Instructions the child executed, start to end."""
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--child", side,
         "--measured", str(measured), "--prepared", str(prepared), *(["--retries"] if retries else [])],
        env={**os.environ, **env}, cwd=harness.HERE, capture_output=True, text=True)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or collected is None:
        sys.exit(f"the {side} under valgrind failed:\n{done.stdout}{done.stderr[-3000:]}")
    return int(collected.group(1))


def per_request(valgrind: str, side: str, requests: int, env: dict[str, str], retries: bool) -> float:
    prepared = WARM_UP + requests
    with ThreadPoolExecutor(2) as pool:  # the two runs of a side at once: instructions do not depend on it
        base, full = pool.map(lambda measured: count(valgrind, side, measured, prepared, env, retries),
                              (0, requests))
    return (full - base) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests a side")
    parser.add_argument("--child", choices=["ceiling", "host"], help=argparse.SUPPRESS)
    parser.add_argument("--measured", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prepared", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--retries", action="store_true",
                        help="measure retries of stored webhooks (a duplicate storm) instead of new ones")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.measured, args.prepared, args.retries)
        return
    valgrind = harness.ensure_installed("valgrind")
    folder = Path(tempfile.mkdtemp(prefix="smsconnector-instructions-"))
    config = harness.host_config(folder, f"sqlite:///{folder / 'bench.db'}", numbers={BRAND: "twilio"},
                                 in_server=False)
    harness.migrate(config)
    if args.retries and args.requests > WARM_UP:
        parser.error(f"--retries repeats the {WARM_UP:,} warm-up webhooks: --requests {WARM_UP:,} at most")
    ceiling = per_request(valgrind, "ceiling", args.requests, {}, args.retries)
    host = per_request(valgrind, "host", args.requests, {"SMSCONNECTOR_CONFIG": str(config)}, args.retries)
    what = "a retry, not stored again" if args.retries else "stored in the inbox"
    label = f"host (signature, normalize, {what}, SQLite)"
    print(f"Instructions a request, in process (callgrind; {args.requests:,} requests after {WARM_UP:,} to warm up, "
          f"{CONCURRENCY} at a time):\n"
          f"  {'ceiling (bare Starlette, Twilio form body, empty TwiML)':<58}{ceiling:>10,.0f}\n"
          f"  {label:<58}{host:>10,.0f}\n"
          f"  {'ceiling / host':<58}{ceiling / host:>10.0%}")


if __name__ == "__main__":
    main()
