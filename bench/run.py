"""The benchmark: starts the servers it needs on loopback, drives them with wrk, prints one table.

    python bench/run.py            # everything (a few minutes)
    python bench/run.py --quick    # shorter runs, a smaller memory run

Every throughput figure is printed beside a baseline measured in the same run on the same machine (a bare
Starlette endpoint with the same uvicorn settings), because absolute figures on a shared machine drift.
Correctness is checked by counting rows after each run: nothing stored twice, nothing lost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

HERE = Path(__file__).parent
PYTHON = sys.executable
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
BRAND = "+15555550100"
PUBLIC_URL = "https://sms.bench.example"
POSTGRES = os.environ.get("SMSCONNECTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server in its own process, so the load generator and the measured process never share a core's GIL."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    port: int = field(default_factory=free_port)
    health: str = "/healthz"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        env = {**os.environ, **self.env}
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.process = subprocess.Popen(argv, env=env, cwd=self.cwd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{argv} exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + self.health, timeout=1).status_code < 500:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{argv} did not become healthy")

    def rss_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the server process, in KiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status)[1]), int(re.search(r"VmHWM:\s+(\d+)", status)[1])  # type: ignore[index]

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def uvicorn_argv(app: str) -> list[str]:
    """The same uvicorn settings for the baseline and the host: one process, default loop and HTTP parser."""
    return [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
            "--no-access-log"]


# -- load ------------------------------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


def _ms(value: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        raise RuntimeError(f"wrk printed a latency this does not read: {value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, requests_file: Path, *, connections: int, seconds: float, threads: int = 2) -> Load:
    out = subprocess.run(
        [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "--timeout", "20s", "-s", str(HERE / "replay.lua"), url, "--", str(requests_file), str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    if "99%" not in out or re.search(r"99%\s+-?nan", out):
        raise RuntimeError(f"wrk measured nothing:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Load(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        requests=int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        errors=(int(errors[1]) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    )


def signed_inbound(path: Path, count: int, *, consumers: int = 2000, prefix: str = "SM",
                   only: set[str] | None = None) -> Path:
    """Write ``count`` distinct, correctly signed Twilio inbound webhooks (one per line) to ``path``.

    With ``only``, just the messages whose MessageSid is in it: the retries of what was stored.
    """
    validator = RequestValidator(AUTH_TOKEN)
    url = PUBLIC_URL + "/webhooks/twilio/inbound"
    with path.open("w") as out:
        for n in range(count):
            sid = f"{prefix}{n:0{34 - len(prefix)}x}"  # 34 characters, as Twilio's are
            if only is not None and sid not in only:
                continue
            params = {
                "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
                "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
                "Body": f"Hi, this is message {n}. Is my order on its way?", "FromCountry": "US",
                "To": BRAND, "ToZip": "", "NumSegments": "1", "MessageSid": sid, "AccountSid": ACCOUNT_SID,
                "From": f"+1415{5550000 + n % consumers:07d}", "ApiVersion": "2010-04-01",
            }
            out.write(f"{validator.compute_signature(url, params)}\t{urlencode(params)}\n")
    return path


# -- the host --------------------------------------------------------------------------------------------


#: entry points the inbound figures do not include; the compliance gate and the router are measured
UNMEASURED = {"ivr", "adkeywords", "automation", "simulator"}


def entry_point_names() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group="smsconnector")]


def host_config(folder: Path, database_url: str, *, fake_twilio: str | None = None, rate: float = 0,
                numbers: tuple[str, ...] = (BRAND,)) -> Path:
    path = folder / "smsconnector.toml"
    listed = "".join(f"""
[[numbers]]
number = "{number}"
provider = "twilio"
skill = "support"
""" for number in numbers)
    path.write_text(f"""
database_url = "{database_url}"
public_url = "{PUBLIC_URL}"
log_level = "warning"

[sender]
default_rate_per_second = {rate}
{listed}
[plugins]
disabled = {sorted(set(entry_point_names()) & UNMEASURED)!r}

[plugins.twilio]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
{f'api_base_url = "{fake_twilio}"' if fake_twilio else ""}

# The outbound runs reply to numbers that never texted: the consent rule is not what is measured
# (the gate's checks still run for every message).
[plugins.compliance.consent]
conversational = "none"
""")
    return path


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a private schema in the local PostgreSQL."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        yield url
        return
    from smsconnector.testing.database import postgres_schema

    with postgres_schema() as url:
        yield url


def count_rows(database_url: str, sql: str) -> int:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def stored_sids(database_url: str) -> set[str]:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(text("SELECT provider_message_id FROM messages"))}
    finally:
        engine.dispose()


def host(config: Path, folder: Path) -> Server:
    subprocess.run([PYTHON, "-m", "smsconnector.cli", "--config", str(config), "db", "upgrade"], check=True,
                   capture_output=True)
    return Server(uvicorn_argv("smsconnector.asgi:app"), env={"SMSCONNECTOR_CONFIG": str(config)}, cwd=folder)


class RssSampler:
    """Samples a server's resident memory twice a second while load runs."""

    def __init__(self, server: Server) -> None:
        import threading

        self.server = server
        self.samples: list[tuple[float, int, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(0.5):
            self.samples.append((time.monotonic(), *self.server.rss_kib()))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> tuple[int, int, int]:
        """RSS (KiB) at half time and at the end of the run, and the peak."""
        if len(self.samples) < 2:
            return 1, 1, 1
        return self.samples[len(self.samples) // 2][1], self.samples[-1][1], max(s[2] for s in self.samples)


# -- the table -------------------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    check: str = ""


def inbound_rows(kind: str, ceiling: Load, args: argparse.Namespace, work: Path) -> list[Row]:
    rows: list[Row] = []
    folder = Path(tempfile.mkdtemp(dir=work))
    with database(kind, folder) as url:
        config = host_config(folder, url)
        bodies = signed_inbound(folder / "inbound.txt", args.messages, prefix="SM" + kind[:2])
        with host(config, folder) as server, RssSampler(server) as memory:
            load = wrk(server.url + "/webhooks/twilio/inbound", bodies, connections=args.connections,
                       seconds=args.seconds)
            memory.stop()
            time.sleep(1)  # requests wrk left in flight when it stopped still commit
            stored = count_rows(url, "SELECT count(*) FROM messages WHERE direction = 'inbound'")
            answered = load.requests - load.errors
            # wrk counts the replies it read before stopping; a few more may have committed: stored >= answered.
            rows.append(Row(
                f"inbound, {kind}", f"{load.requests_per_second:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
                f"p99 {load.p99_ms:.1f} ms", f"{ceiling.requests_per_second:,.0f} req/s",
                f"{load.requests_per_second / ceiling.requests_per_second:.0%}",
                f"{'ok' if stored >= answered else 'LOST'}: {stored:,} stored, {answered:,} answered 2xx, "
                f"{load.errors} errors"))
            half, end, peak = memory.summary()
            rows.append(Row(f"memory of the host, inbound {kind}", f"RSS {half / 1024:,.0f} MiB at half time, "
                            f"{end / 1024:,.0f} MiB at the end, peak {peak / 1024:,.0f} MiB", "",
                            f"{(end - half) / half:+.1%} over the second half",
                            f"{'flat' if end <= half * 1.1 else 'GROWS'} (target: within 10%)"))
            retries = signed_inbound(folder / "retries.txt", args.messages, prefix="SM" + kind[:2],
                                     only=stored_sids(url))
            storm = wrk(server.url + "/webhooks/twilio/inbound", retries, connections=args.connections,
                        seconds=args.seconds / 2)
            time.sleep(1)
            again = count_rows(url, "SELECT count(*) FROM messages WHERE direction = 'inbound'")
            twice = count_rows(url, "SELECT count(*) - count(DISTINCT provider_message_id) FROM messages "
                               "WHERE direction = 'inbound'")
            rows.append(Row(
                f"duplicate storm, {kind}", f"{storm.requests_per_second:,.0f} req/s, p99 {storm.p99_ms:.1f} ms",
                f"{ceiling.requests_per_second:,.0f} req/s",
                f"{storm.requests_per_second / ceiling.requests_per_second:.0%}",
                f"{'ok' if again == stored and twice == 0 else 'STORED TWICE'}: {again - stored} new rows from "
                f"{storm.requests - storm.errors:,} retries, {storm.errors} errors"))
    return rows


SENDERS = tuple(f"+1555555{n:04d}" for n in range(100, 110))


def wrk_fake(url: str, *, connections: int, seconds: float) -> Load:
    """The baseline for sending: Messages.json creates posted straight to the fake, as fast as wrk can."""
    from base64 import b64encode

    basic = b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    out = subprocess.run(
        [ensure_wrk(), "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s",
         str(HERE / "post.lua"), "-H", f"Authorization: Basic {basic}", url],
        check=True, capture_output=True, text=True).stdout
    return Load(float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
                _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
                _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
                int(re.search(r"(\d+) requests in", out)[1]), 0)  # type: ignore[index]


def accepted_window(database_url: str) -> tuple[int, int, float, dict[str, float]]:
    """(accepted, distinct provider ids, seconds from first to last acceptance, per-sender rate)."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT from_number, provider_message_id, updated_at FROM messages "
                                     "WHERE direction = 'outbound' AND provider_message_id IS NOT NULL")).all()
    finally:
        engine.dispose()
    from datetime import datetime

    def when(value: object) -> float:
        return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).timestamp()

    times = sorted(when(r[2]) for r in rows)
    per_sender: dict[str, list[float]] = {}
    for r in rows:
        per_sender.setdefault(r[0], []).append(when(r[2]))
    rates = {k: (len(v) - 1) / (max(v) - min(v)) for k, v in per_sender.items() if len(v) > 1 and max(v) > min(v)}
    return len(rows), len({r[1] for r in rows}), (times[-1] - times[0]) if len(times) > 1 else 0.0, rates


def outbound_rows(args: argparse.Namespace, work: Path) -> list[Row]:
    rows: list[Row] = []
    fake_env = {"FAKE_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "FAKE_TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with Server(uvicorn_argv("fake_twilio:app"), env=fake_env, cwd=HERE, health="/") as fake:
        base = wrk_fake(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", connections=args.connections,
                        seconds=args.seconds / 2)
        rows.append(Row("outbound baseline: creates posted straight to the fake Twilio",
                        f"{base.requests_per_second:,.0f} msg/s, p99 {base.p99_ms:.1f} ms", "", "100%"))
        runs = [("throttling off", 0.0, args.outbound), ("throttling on, 10 segments/s per number", 10.0,
                                                         int(10 * len(SENDERS) * max(3.0, args.seconds / 2)))]
        for label, rate, count in runs:
            folder = Path(tempfile.mkdtemp(dir=work))
            url = f"sqlite:///{folder / 'bench.db'}"
            config = host_config(folder, url, fake_twilio=fake.url, rate=rate, numbers=SENDERS)
            subprocess.run([PYTHON, "-m", "smsconnector.cli", "--config", str(config), "db", "upgrade"], check=True,
                           capture_output=True)
            subprocess.run([PYTHON, str(HERE / "queue_replies.py"), str(config), str(count), ",".join(SENDERS)],
                           check=True, capture_output=True)
            with host(config, folder):
                deadline = time.monotonic() + 600
                while count_rows(url, "SELECT count(*) FROM outbox") and time.monotonic() < deadline:
                    time.sleep(0.5)
            accepted, distinct, seconds, rates = accepted_window(url)
            rate_seen = (accepted - 1) / seconds if seconds else 0.0
            check = f"{'ok' if accepted == distinct == count else 'MISMATCH'}: {accepted:,} accepted of {count:,}"
            if rate:
                fastest = max(rates.values(), default=0.0)
                check += f", fastest number {fastest:.1f}/s ({'ok' if fastest <= rate * 1.1 else 'OVER'} <= {rate:g})"
            rows.append(Row(f"outbound to the fake Twilio, sqlite, {label}", f"{rate_seen:,.0f} msg/s",
                            f"{base.requests_per_second:,.0f} msg/s",
                            f"{rate_seen / base.requests_per_second:.0%}", check))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--messages", type=int, default=None, help="distinct inbound messages prepared per run")
    parser.add_argument("--outbound", type=int, default=None, help="agent replies drained per outbound run")
    args = parser.parse_args()
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    args.messages = args.messages or (30_000 if args.quick else 100_000)
    args.outbound = args.outbound or (2_000 if args.quick else 10_000)

    work = Path(tempfile.mkdtemp(prefix="smsconnector-bench-"))
    rows: list[Row] = []
    try:
        bodies = signed_inbound(work / "ceiling.txt", 5_000)
        with Server(uvicorn_argv("ceiling:app"), cwd=HERE, health="/") as ceiling_server:
            ceiling = wrk(ceiling_server.url + "/webhooks/twilio/inbound", bodies, connections=args.connections,
                          seconds=args.seconds)
        rows.append(Row("ceiling: bare Starlette, same body and reply",
                        f"{ceiling.requests_per_second:,.0f} req/s, p50 {ceiling.p50_ms:.1f} ms, "
                        f"p99 {ceiling.p99_ms:.1f} ms", "", "100%"))
        rows += inbound_rows("sqlite", ceiling, args, work)
        from smsconnector.testing.database import postgres_available

        if postgres_available() is None:
            rows += inbound_rows("postgres", ceiling, args, work)
        else:
            rows.append(Row("inbound, postgres", "skipped", check=str(postgres_available())))
        rows += outbound_rows(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nsmsconnector benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {args.connections} connections, {args.seconds:g} s per run\n")
    print("| scenario | figure | baseline | ratio | check |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.scenario} | {row.figure} | {row.baseline} | {row.ratio} | {row.check} |")


if __name__ == "__main__":
    main()
