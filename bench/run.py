"""The benchmark: starts the servers it needs on loopback, drives them with wrk, prints one table.

    python bench/run.py            # everything (about 16 minutes on two cores)
    python bench/run.py --quick    # shorter runs, fewer messages (about 5 minutes)

Every throughput figure is printed beside a baseline measured in the same run on the same machine (a bare
Starlette endpoint with the same uvicorn settings, or a fake provider driven directly), because absolute
figures on a shared machine drift. They drift within a run too, so the inbound bursts are compared with the
ceiling measured right before and right after each of them. Correctness is checked by counting rows once
the host has gone quiet: nothing stored twice, nothing lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import tempfile
import time
from base64 import b64encode
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import harness
import httpx
from harness import (
    ACCOUNT_SID,
    ADMIN_TOKEN,
    AUTH_TOKEN,
    HERE,
    OPENMARKET,
    PUBLIC_URL,
    PYTHON,
    Busy,
    CpuSplit,
    Db,
    Load,
    RssSampler,
    Server,
    Worker,
    cpu_seconds,
    cpu_split,
    database,
    host,
    host_config,
    migrate,
    post_json,
    replay_line,
    uvicorn_argv,
    watched,
    wrk,
    wrk_once,
    wrk_plain,
)
from twilio.request_validator import RequestValidator

from smsconnector.segments import split_for_concatenation
from smsconnector_openmarket.fake import FakeOpenMarket

BRAND = "+15555550100"
SENDERS = tuple(f"+1555555{n:04d}" for n in range(100, 110))
TWILIO_INBOUND = "/webhooks/twilio/inbound"
#: inbox entries the host has stored and not yet routed
PENDING = "SELECT count(*) FROM inbox WHERE processed_at IS NULL"
OPENMARKET_INBOUND = "/webhooks/openmarket/inbound"
#: the sender's default concurrency, and so the connections of the baselines against the fakes
SENDS_IN_FLIGHT = 64
#: a provider API's answer time in the "realistic" runs (Twilio's Messages.json answers in about this)
REALISTIC_LATENCY = 0.075


@dataclass
class Row:
    scenario: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    check: str = ""
    host: str = ""  #: what the host did: its CPU share, SQL per message


def _host(busy: Busy | None, count: int, what: str = "message") -> str:
    if busy is None:
        return ""
    per = busy.per(count, what)
    return f"CPU {busy.share:.0%}" + (f"; {per}" if per else "")


def _rate(load: Load) -> str:
    return f"{load.requests_per_second:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.0%}" if baseline else ""


def _ok(good: bool, bad: str = "FAILED") -> str:
    return "ok" if good else bad


def _stored(in_inbox: int, answered: int, prepared: int) -> str:
    """Whether every webhook answered 2xx was stored; undecidable when the burst outran its distinct webhooks
    (wrk started over, and a webhook answered twice is stored once)."""
    if answered > prepared:
        return f"REPLAYED (only {prepared:,} distinct)"
    return _ok(in_inbox >= answered, "LOST")


# -- requests ----------------------------------------------------------------------------------------------


def twilio_inbound(n: int, *, to: str = BRAND, consumers: int = 2000, prefix: str = "SM") -> tuple[str, str]:
    """(MessageSid, replay line) of a correctly signed Twilio inbound webhook, distinct for each ``n``."""
    sid = f"{prefix}{n:0{34 - len(prefix)}x}"  # 34 characters, as Twilio's are
    params = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
        "Body": f"Hi, this is message {n}. Is my order on its way?", "FromCountry": "US",
        "To": to, "ToZip": "", "NumSegments": "1", "MessageSid": sid, "AccountSid": ACCOUNT_SID,
        "From": f"+1415{5550000 + n % consumers:07d}", "ApiVersion": "2010-04-01",
    }
    signature = _VALIDATOR.compute_signature(PUBLIC_URL + TWILIO_INBOUND, params)
    return sid, replay_line("POST", TWILIO_INBOUND, {"Content-Type": "application/x-www-form-urlencoded",
                                                     "X-Twilio-Signature": signature}, urlencode(params))


_VALIDATOR = RequestValidator(AUTH_TOKEN)
_OM_AUTH = "Basic " + b64encode(f"{OPENMARKET['inbound_username']}:{OPENMARKET['inbound_password']}".encode()).decode()


def openmarket_inbound(body: dict[str, object]) -> str:
    return replay_line("POST", OPENMARKET_INBOUND, {"Content-Type": "application/json; charset=UTF-8",
                                                    "Authorization": _OM_AUTH}, json.dumps(body))


def enough_for(ceiling: Load | Bracket, seconds: float) -> int:
    """How many distinct webhooks a burst of ``seconds`` needs: wrk starts over at the end of its file, and a
    webhook sent again is a retry (cheaper, and stored once), so a burst must not run out. The host answers no
    faster than the ceiling, so the ceiling's rate for the whole burst, with a margin for drift, is enough."""
    return round(ceiling.requests_per_second * seconds * 1.25)


def distinct_needed(args: argparse.Namespace, ceiling: Load | Bracket) -> int:
    """The distinct webhooks to prepare for a burst of the run's length: ``--messages``, or more if need be."""
    return max(args.messages, enough_for(ceiling, args.seconds))


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(lines))
    return path


# -- the ceilings ------------------------------------------------------------------------------------------


def ceilings(args: argparse.Namespace, work: Path) -> tuple[Load, Load, list[Row]]:
    """The bare-Starlette ceiling for a Twilio form webhook and for an OpenMarket JSON webhook."""
    form = write_lines(work / "ceiling.txt", [twilio_inbound(n)[1] for n in range(5_000)])
    fake = FakeOpenMarket()
    mo = write_lines(work / "ceiling-om.txt", [openmarket_inbound(fake.mo_parts("x" * 400, reference=n % 250 + 1)[0])
                                              for n in range(2_000)])
    with Server(uvicorn_argv("ceiling:app"), cwd=HERE, health="/") as server:
        twilio = wrk(server.url, form, connections=args.connections, seconds=args.seconds)
        openmarket = wrk(server.url, mo, connections=args.connections, seconds=args.seconds / 2)
    return twilio, openmarket, [
        Row("ceiling: bare Starlette, Twilio form body, same reply", _rate(twilio), "", "100%"),
        Row("ceiling: bare Starlette, OpenMarket JSON body, same reply", _rate(openmarket), "", "100%"),
    ]


@dataclass
class Bracket:
    """The Twilio-form ceiling measured right before and right after a figure: the machine drifts within a run
    (by a quarter in one full run), so the start-of-run ceiling alone can be far from the figure's moment."""

    before: Load
    after: Load

    @property
    def requests_per_second(self) -> float:
        return (self.before.requests_per_second + self.after.requests_per_second) / 2

    def __str__(self) -> str:
        return (f"{self.requests_per_second:,.0f} req/s (ceiling just before {self.before.requests_per_second:,.0f},"
                f" just after {self.after.requests_per_second:,.0f})")


def ceiling_now(args: argparse.Namespace, work: Path, *, seconds: float | None = None) -> tuple[Load, CpuSplit]:
    """The Twilio-form ceiling again, now (``ceilings`` wrote its requests), and where the CPU went meanwhile."""
    with Server(uvicorn_argv("ceiling:app"), cwd=HERE, health="/") as server, \
            cpu_split(server.pid, "ceiling") as split:
        load = wrk(server.url, work / "ceiling.txt", connections=args.connections, seconds=seconds or args.seconds)
    return load, split


# -- inbound and duplicates --------------------------------------------------------------------------------


def inbound_rows(kind: str, args: argparse.Namespace, work: Path) -> list[Row]:
    """The saturating burst, its routing, and the duplicate storm, each beside the ceiling measured right
    before the burst and right after its routing."""
    rows: list[Row] = []
    folder = Path(tempfile.mkdtemp(dir=work))
    prefix = "SM" + kind[:2]
    inbound = "SELECT count(*) FROM messages WHERE direction = 'inbound'"
    with database(kind, folder) as url:
        config = host_config(folder, url, numbers={BRAND: "twilio"})
        migrate(config)
        before, before_split = ceiling_now(args, work)
        made = [twilio_inbound(n, prefix=prefix) for n in range(distinct_needed(args, before))]
        bodies = write_lines(folder / "inbound.txt", [line for _, line in made])
        db = Db(url)
        with host(config, folder) as server:
            with watched(server, f"inbound-{kind}") as busy:
                started = time.monotonic()
                with cpu_split(server.pid) as split:
                    load = wrk(server.url, bodies, connections=args.connections, seconds=args.seconds)
                burst_over = time.monotonic()
                # wrk stops with requests in flight: they still commit; then the processor finishes routing.
                db.wait_quiet(PENDING, until=0)
                routed_at = time.monotonic()
                stored = db.wait_quiet(inbound)
            ceiling = Bracket(before, ceiling_now(args, work)[0])  # the host is idle meanwhile
            answered = load.requests - load.errors
            in_inbox = db.scalar("SELECT count(*) FROM inbox")
            # wrk counts the replies it read before stopping; a few more may have committed: stored >= answered.
            rows.append(Row(
                f"inbound, {kind}: answered (stored in the inbox)", _rate(load),
                str(ceiling), _ratio(load.requests_per_second, ceiling.requests_per_second),
                f"{_stored(in_inbox, answered, len(made))}: {in_inbox:,} stored, {answered:,} answered 2xx, "
                f"{load.errors} errors",
                f"{_host(busy, stored)}; during the burst {split}; CPU a webhook {split.per(load.requests)}, the "
                f"ceiling's a request just before {before_split.per(before.requests)}"))
            routed_rate = stored / (routed_at - started)
            rows.append(Row(
                f"inbound, {kind}: routed (whole pipeline, burst and catch-up)",
                f"{routed_rate:,.0f} msg/s; routing done {routed_at - burst_over:.1f} s after the burst",
                str(ceiling), _ratio(routed_rate, ceiling.requests_per_second),
                f"{_ok(stored == in_inbox, 'NOT ROUTED')}: {stored:,} of {in_inbox:,} routed into messages"))
            kept = {r["provider_message_id"] for r in db.rows("SELECT provider_message_id FROM messages")}
            retries = write_lines(folder / "retries.txt", [line for sid, line in made if sid in kept])
            with watched(server, f"storm-{kind}") as storm_busy:
                storm = wrk(server.url, retries, connections=args.connections, seconds=args.seconds / 2)
                again = db.wait_quiet(inbound)
            twice = db.scalar("SELECT count(*) - count(DISTINCT provider_message_id) FROM messages "
                              "WHERE direction = 'inbound'")
            rows.append(Row(
                f"duplicate storm, {kind}", _rate(storm), str(ceiling),
                _ratio(storm.requests_per_second, ceiling.requests_per_second),
                f"{_ok(again == stored and twice == 0, 'STORED TWICE')}: {again - stored} new rows from "
                f"{storm.requests - storm.errors:,} retries, {storm.errors} errors",
                _host(storm_busy, storm.requests, "retry")))
        db.close()
    return rows


#: short SQLite bursts, each taken right after a ceiling of its own: a pair's share moves by a third from one
#: pair to the next (38% to 72% within a minute), so the median needs more than three
PAIRS = 5
#: what each of them sends before it is timed
WARM_UP_SECONDS = 1.0


def paired_rows(args: argparse.Namespace, work: Path) -> list[Row]:
    """Short SQLite bursts, each on a fresh host right after the ceiling: the share of each pair, and their
    median. The machine's speed drifts within a run, and the host's more than the ceiling's (its CPU per
    webhook moved by half between rounds of one run while the ceiling's held), so one long burst between two
    ceilings can land on a slow spell; a pair is measured within seconds of itself. Each pair's CPU per request,
    the host's and the ceiling's, shows which of the two moved."""
    seconds = max(3.0, args.seconds / 3)
    loads, baselines, shares, checks, splits = [], [], [], [], []
    for pair in range(PAIRS):
        ceiling, ceiling_split = ceiling_now(args, work, seconds=seconds)
        folder = Path(tempfile.mkdtemp(dir=work))
        with database("sqlite", folder) as url:
            config = host_config(folder, url, numbers={BRAND: "twilio"})
            migrate(config)
            warm, prepared = enough_for(ceiling, WARM_UP_SECONDS), enough_for(ceiling, WARM_UP_SECONDS + seconds)
            made = [line for _, line in (twilio_inbound(n, prefix=f"SMp{pair}") for n in range(prepared))]
            warm_up, bodies = write_lines(folder / "warm.txt", made[:warm]), write_lines(folder / "in.txt", made[warm:])
            db = Db(url)
            with host(config, folder) as server:
                # Its first second runs at 63-98% of the host's speed after it (caches filling, connections
                # opening), which a short burst would count for a fifth of itself. The ceiling has nothing to
                # warm: its first second ran at 97-122% of the five after it, so it goes unwarmed.
                first = wrk(server.url, warm_up, connections=args.connections, seconds=WARM_UP_SECONDS)
                with cpu_split(server.pid) as split:
                    load = wrk(server.url, bodies, connections=args.connections, seconds=seconds)
                in_inbox = db.wait_quiet("SELECT count(*) FROM inbox")
            db.close()
        loads.append(load)
        splits.append(f"{split.per(load.requests)} / {ceiling_split.per(ceiling.requests)} (stolen "
                      f"{split.stolen:.0%} / {ceiling_split.stolen:.0%})")
        baselines.append(ceiling)
        shares.append(load.requests_per_second / ceiling.requests_per_second)
        answered = first.requests - first.errors + load.requests - load.errors
        replayed = first.requests > warm or load.requests > prepared - warm
        checks.append("REPLAYED" if replayed else _ok(in_inbox >= answered, "LOST"))
    middle = sorted(range(PAIRS), key=shares.__getitem__)[PAIRS // 2]
    load = loads[middle]
    return [Row(
        f"inbound, sqlite: {PAIRS} bursts of {seconds:g} s, each right after a ceiling (the median pair)",
        f"{_rate(load)}; the pairs' shares {', '.join(f'{share:.0%}' for share in shares)}",
        f"{baselines[middle].requests_per_second:,.0f} req/s", f"{shares[middle]:.0%}",
        "ok" if set(checks) == {"ok"} else "; ".join(checks),
        f"CPU a request, host / ceiling (and what the hypervisor took meanwhile): {', '.join(splits)}")]


#: the rates offered: 300 and 400 a second bracket what one SQLite process routes while it answers (it keeps up
#: with 300); on PostgreSQL, 10 a second shows no polling delay, and 1,000 a second what scale-out is for
STEADY_RATES = {"sqlite": (100, 300, 400), "postgres": (10, 300, 500, 1000)}


def steady_rows(kind: str, ceiling: Load, args: argparse.Namespace, work: Path, *, split: bool = False
                ) -> list[Row]:
    """Webhooks at a steady rate, as a campaign's replies come in: how soon each is answered, and how soon
    after it was stored it was routed (what an agent waits), from the rows' own times. ``split``: a web process
    answers (`serve --no-worker`) while a worker process routes."""
    rows: list[Row] = []
    where = ", web process and worker process" if split else ""
    for rate in STEADY_RATES[kind]:
        folder = Path(tempfile.mkdtemp(dir=work))
        with database(kind, folder) as url:
            config = host_config(folder, url, numbers={BRAND: "twilio"}, in_server=not split)
            migrate(config)
            bodies = write_lines(folder / "inbound.txt", [line for _, line in (
                twilio_inbound(n, prefix=f"SMst{rate}{kind[0]}") for n in range(int(rate * args.seconds * 1.2)))])
            db = Db(url)
            with (Worker(config, folder) if split else nullcontext()), host(config, folder) as server, \
                    watched(server, f"steady-{rate}-{kind}{'-split' if split else ''}") as busy:
                load = wrk(server.url, bodies, connections=args.connections, seconds=args.seconds, rate=rate)
                burst_over = time.monotonic()
                db.wait_quiet(PENDING, until=0)
                behind = time.monotonic() - burst_over
            waits = sorted(_seconds(r["created_at"]) - _seconds(r["received_at"]) for r in db.rows(
                "SELECT m.created_at, i.received_at FROM messages m JOIN inbox i "
                "ON i.provider = m.provider AND i.key = 'message:' || m.provider_message_id "
                "WHERE m.direction = 'inbound'"))
            in_inbox = db.scalar("SELECT count(*) FROM inbox")
            db.close()
        answered = load.requests - load.errors
        rows.append(Row(
            f"inbound at a steady {rate}/s, {kind}{where}: answered, and routed after being stored",
            f"{load.requests_per_second:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; routed "
            f"p50 {_percentile(waits, 50) * 1000:,.0f} ms, p99 {_percentile(waits, 99) * 1000:,.0f} ms, "
            f"max {max(waits, default=0) * 1000:,.0f} ms after being stored",
            f"{rate} req/s offered", _ratio(load.requests_per_second, rate),
            f"{_ok(len(waits) == in_inbox >= answered, 'NOT ROUTED')}: {len(waits):,} routed of {in_inbox:,} "
            f"stored, {answered:,} answered 2xx, {load.errors} errors; the last routed {behind:.1f} s after the "
            "last request", _host(busy, in_inbox)))
    return rows


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


def inbound_split_rows(kind: str, ceiling: Load, args: argparse.Namespace, work: Path, workers: int = 1
                       ) -> list[Row]:
    """The same burst, answered by a web process while ``workers`` worker processes route; what routing costs
    the workers a message (their CPU from the burst's start until the last is routed; the database server's is
    not counted)."""
    folder = Path(tempfile.mkdtemp(dir=work))
    inbound = "SELECT count(*) FROM messages WHERE direction = 'inbound'"
    with database(kind, folder) as url:
        config = host_config(folder, url, numbers={BRAND: "twilio"}, in_server=False)
        migrate(config)
        prepared = distinct_needed(args, ceiling)
        bodies = write_lines(folder / "inbound.txt", [line for _, line in (
            twilio_inbound(n, prefix="SMs" + kind[0]) for n in range(prepared))])
        db = Db(url)
        with contextlib.ExitStack() as running:
            pool = [running.enter_context(Worker(config, folder)) for _ in range(workers)]
            server = running.enter_context(host(config, folder))
            busy = running.enter_context(watched(server, f"inbound-split-{kind}-{workers}"))
            worker_busy = running.enter_context(watched(pool[0], f"inbound-split-{kind}-{workers}-worker"))
            cpu = sum(cpu_seconds(w.pid) for w in pool)
            started = time.monotonic()
            load = wrk(server.url, bodies, connections=args.connections, seconds=args.seconds)
            burst_over = time.monotonic()
            routed_during = db.scalar(inbound)
            db.wait_quiet(PENDING, until=0)
            routed_at = time.monotonic()
            cpu = sum(cpu_seconds(w.pid) for w in pool) - cpu
            stored = db.wait_quiet(inbound)
        in_inbox = db.scalar("SELECT count(*) FROM inbox")
        db.close()
    answered = load.requests - load.errors
    routed_rate = stored / (routed_at - started)
    who = "worker process" if workers == 1 else f"{workers} worker processes"
    worker_cpu = f"worker CPU {cpu / (routed_at - started):.0%}" + (" in all" if workers > 1 else "")
    return [
        Row(f"inbound, {kind}, web process (`serve --no-worker`) and {who}: answered", _rate(load),
            f"{ceiling.requests_per_second:,.0f} req/s", _ratio(load.requests_per_second,
                                                                ceiling.requests_per_second),
            f"{_stored(in_inbox, answered, prepared)}: {in_inbox:,} stored, {answered:,} answered 2xx, "
            f"{load.errors} errors", f"web {_host(busy, in_inbox)}; worker {_host(worker_busy, in_inbox)}"),
        Row(f"inbound, {kind}, web process and {who}: routed (during the burst and after)",
            f"{routed_rate:,.0f} msg/s; {routed_during:,} routed during the burst, the rest "
            f"{routed_at - burst_over:.1f} s after it", f"{ceiling.requests_per_second:,.0f} req/s",
            _ratio(routed_rate, ceiling.requests_per_second),
            f"{_ok(stored == in_inbox, 'NOT ROUTED')}: {stored:,} of {in_inbox:,} routed into messages",
            f"{worker_cpu}, {cpu / max(1, stored) * 1000:.3f} ms a routed message"),
    ]


#: worker processes routing one backlog: one, and two to see whether routing grows with workers
BACKLOG_WORKERS = {"sqlite": (1,), "postgres": (1, 2)}


def backlog_rows(kinds: Sequence[str], args: argparse.Namespace, work: Path) -> list[Row]:
    """A backlog routed by worker processes alone, as after a burst: how fast routing itself goes, with one
    worker and with two, and the CPU it costs the workers a message (the database server's is not counted).

    The workers start first and wait; the backlog then arrives in one transaction (the inbox's own insert, as a
    web process's would), so every worker is woken by the same commit. Its messages come from 2,000 consumers in
    turn, so most continue a conversation an earlier one opened."""
    rows: list[Row] = []
    baseline: float | None = None
    for kind in kinds:
        for workers in BACKLOG_WORKERS[kind]:
            folder = Path(tempfile.mkdtemp(dir=work))
            with database(kind, folder) as url:
                config = host_config(folder, url, numbers={BRAND: "twilio"}, in_server=False)
                migrate(config)
                db = Db(url)
                with contextlib.ExitStack() as running:
                    pids = [running.enter_context(Worker(config, folder)).pid for _ in range(workers)]
                    cpu = sum(cpu_seconds(pid) for pid in pids)
                    fill_inbox(url, args.backlog)
                    started = time.monotonic()  # committed: the workers are woken now
                    db.wait_quiet(PENDING, until=0, settle=0)
                    seconds = time.monotonic() - started
                    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
                routed = db.scalar("SELECT count(*) FROM messages WHERE direction = 'inbound'")
                twice = db.scalar("SELECT count(*) - count(DISTINCT provider_message_id) FROM messages")
                db.close()
            rate = routed / seconds
            baseline = baseline or rate
            rows.append(Row(
                f"routing a backlog of {args.backlog:,} inbox entries, {kind}, {workers} worker process"
                f"{'es' if workers > 1 else ''}", f"{rate:,.0f} msg/s", f"{baseline:,.0f} msg/s (sqlite, 1 worker)",
                _ratio(rate, baseline), f"{_ok(routed == args.backlog and twice == 0, 'NOT ROUTED ONCE')}: "
                f"{routed:,} routed of {args.backlog:,}, {twice} twice",
                f"workers' CPU {cpu / seconds:.0%} of a core in all, {cpu / routed * 1000:.3f} ms a message"))
    return rows


def fill_inbox(url: str, count: int) -> None:
    """Put ``count`` consumer messages in the inbox with one transaction, as normalized webhooks."""
    import asyncio

    from smsconnector.app import App
    from smsconnector.config import load_config
    from smsconnector.messages import InboundMessage

    async def fill() -> None:
        app = App(load_config(env={}, overrides={"database_url": url, "log_level": "warning"}))
        items = [InboundMessage(provider="twilio", provider_message_id=f"SMbk{n:030x}", to_number=BRAND,
                                from_number=f"+1415{5550000 + n % 2000:07d}",
                                text=f"Hi, this is message {n}. Is my order on its way?") for n in range(count)]
        await app.inbox.put("twilio", items)
        await app.inbox.close()
        await app.store.close()

    asyncio.run(fill())


# -- outbound ----------------------------------------------------------------------------------------------


@contextmanager
def fake_provider(provider: str, latency: float) -> Iterator[Server]:
    with Server(uvicorn_argv(f"fakes:{provider}"), env={"FAKE_LATENCY": str(latency)}, cwd=HERE,
                health="/bench/arrivals") as fake:
        yield fake


def fake_baseline(provider: str, latency: float, seconds: float) -> Load:
    """The fake's own rate: its send request posted straight to it, ``SENDS_IN_FLIGHT`` at a time."""
    with fake_provider(provider, latency) as fake:
        if provider == "twilio":
            basic = b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
            return wrk_plain(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", HERE / "post_twilio.lua",
                             connections=SENDS_IN_FLIGHT, seconds=seconds, headers={"Authorization": f"Basic {basic}"})
        basic = b64encode(f"{OPENMARKET['account_id']}:{OPENMARKET['password']}".encode()).decode()
        return wrk_plain(f"{fake.url}/sms/v4/mt", HERE / "post_openmarket.lua", connections=SENDS_IN_FLIGHT,
                         seconds=seconds, headers={"Authorization": f"Basic {basic}"})


def client_alone_rate(provider: str, seconds: float) -> float:
    """Messages a second the plugin's own client alone sends to its fake, SENDS_IN_FLIGHT at a time."""
    with fake_provider(provider, 0) as fake:
        out = subprocess.run([PYTHON, str(HERE / "client_alone.py"), provider, fake.url, str(SENDS_IN_FLIGHT),
                              str(seconds)], check=True, capture_output=True, text=True, cwd=HERE).stdout
    found = json.loads(out)
    return float(found["messages"]) / float(found["seconds"])


@dataclass
class Seeded:
    """A SQLite database with agents online and one conversation per consumer, each assigned to an agent."""

    provider: str
    path: Path
    numbers: dict[str, str]
    conversations: list[tuple[int, str, str]]  #: (conversation id, its agent's token, its brand number)


def seed(provider: str, consumers: int, work: Path, args: argparse.Namespace) -> Seeded:
    """Agents come online, then every consumer texts one of the brand numbers: the conversations to reply in."""
    folder = Path(tempfile.mkdtemp(dir=work))
    url = f"sqlite:///{folder / 'bench.db'}"
    numbers = dict.fromkeys(SENDERS, provider)
    config = host_config(folder, url, numbers=numbers, sender=False)
    migrate(config)
    agents = 4
    tokens: dict[int, str] = {}
    with host(config, folder) as server:
        for n in range(agents):
            made = post_json(f"{server.url}/api/agents", {"name": f"Agent {n}", "skills": ["support"],
                                                          "max_concurrent": -(-consumers // agents),
                                                          "status": "online"}, token=ADMIN_TOKEN)
            tokens[made["id"]] = made["token"]
        if provider == "twilio":
            lines = [twilio_inbound(n, to=SENDERS[n % len(SENDERS)], consumers=consumers, prefix="SMsd")[1]
                     for n in range(consumers)]
        else:
            fake = FakeOpenMarket()
            lines = [openmarket_inbound(fake.mo(f"Hi, where is order {n}?", source=f"1415{5550000 + n:07d}",
                                                destination=SENDERS[n % len(SENDERS)][1:]))
                     for n in range(consumers)]
        wrk_once(server.url, write_lines(folder / "seed.txt", lines), connections=args.connections, limit=300)
        db = Db(url)
        db.wait_quiet(PENDING, until=0, limit=300)
        assigned = db.rows("SELECT id, agent_id, brand_number FROM conversations WHERE status = 'assigned' "
                           "ORDER BY id")
        db.close()
    if len(assigned) != consumers:
        raise RuntimeError(f"seeding assigned {len(assigned)} conversations of {consumers}")
    return Seeded(provider, folder / "bench.db", numbers,
                  [(r["id"], tokens[r["agent_id"]], r["brand_number"]) for r in assigned])


def reply_lines(seeded: Seeded, count: int, numbers: int | None = None) -> list[str]:
    """``count`` agent replies, round the conversations (of the first ``numbers`` brand numbers), each posted
    with its agent's token."""
    conversations = [c for c in seeded.conversations if numbers is None or SENDERS.index(c[2]) < numbers]
    lines = []
    for n in range(count):
        conversation, token, _ = conversations[n % len(conversations)]
        lines.append(replay_line("POST", f"/api/conversations/{conversation}/messages",
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                                 json.dumps({"text": f"Your order {n} ships today."})))
    return lines


@dataclass
class Drained:
    queued: int  #: outbound messages stored
    api: Load | None  #: the replies posted through the API
    accepted: int  #: messages with the provider's id
    distinct: int  #: distinct provider ids among them
    left: int  #: outbox rows left
    arrived: dict[str, list[float]]  #: at the fake: arrival times by sender number
    max_in_flight: int
    seconds: float  #: from the first reply queued (or, drain only, the first acceptance) to the last acceptance
    busy: Busy  #: the host while it sent (and, end to end, took the replies too)
    api_busy: Busy | None = None  #: the host while it took the replies, sender off
    worker_busy: Busy | None = None  #: split: the worker process while it sent
    samples: RssSampler | None = None

    @property
    def rate(self) -> float:
        return (self.accepted - (0 if self.api else 1)) / self.seconds if self.seconds else 0.0

    @property
    def sends(self) -> int:
        return sum(len(v) for v in self.arrived.values())

    def check(self, expected: int) -> str:
        good = self.queued == self.accepted == self.distinct == self.sends == expected and self.left == 0
        api = f", {self.api.errors} API errors" if self.api else ""
        return (f"{_ok(good, 'MISMATCH')}: {self.accepted:,} accepted of {expected:,} replies, {self.sends:,} sends "
                f"at the fake, {self.left} left in the outbox{api}")


def drain(name: str, seeded: Seeded, count: int, *, latency: float, rate: float, phased: bool,
          args: argparse.Namespace, work: Path, sample: bool = False, numbers: int | None = None,
          split: bool = False) -> Drained:
    """Post ``count`` agent replies through the API and let the sender deliver them to the fake provider.

    ``phased``: the replies are queued with the sender off, then a host with the sender on drains them, so
    the drain is measured alone; otherwise both run at once (end to end, as agents and sends share a host).
    ``split``: end to end, with a web process taking the replies and a worker process sending them.
    ``numbers``: only the conversations with the first so many brand numbers get replies.
    """
    folder = Path(tempfile.mkdtemp(dir=work))
    shutil.copy(seeded.path, folder / "bench.db")
    url = f"sqlite:///{folder / 'bench.db'}"
    lines = write_lines(folder / "replies.txt", reply_lines(seeded, count, numbers))
    db = Db(url)
    accepted_sql = "SELECT count(*) FROM messages WHERE direction = 'outbound' AND provider_message_id IS NOT NULL"
    with fake_provider(seeded.provider, latency) as fake:
        twilio, openmarket = (fake.url, None) if seeded.provider == "twilio" else (None, fake.url)

        def config(sender: bool) -> Path:
            return host_config(folder, url, numbers=seeded.numbers, rate=rate, sender=sender, fake_twilio=twilio,
                               fake_openmarket=openmarket, in_server=not split)

        if phased:
            with host(config(sender=False), folder) as server, watched(server, f"{name}-api") as api_busy:
                api = wrk_once(server.url, lines, connections=args.connections, limit=300)
        with (Worker(config(sender=True), folder) if split else nullcontext()) as worker, \
                host(config(sender=True), folder) as server, \
                (RssSampler(server.pid, lambda: db.scalar(accepted_sql)) if sample else nullcontext()) as sampler, \
                watched(server, name) as busy, \
                (watched(worker, f"{name}-worker") if worker else nullcontext()) as worker_busy:
            if not phased:
                api = wrk_once(server.url, lines, connections=args.connections, limit=300)
            db.wait_quiet("SELECT count(*) FROM outbox", until=0, limit=600)
            if sampler is not None:
                time.sleep(2)  # a sample or two after the run: what the host keeps
        arrivals = httpx.get(fake.url + "/bench/arrivals").json()
    times = db.rows("SELECT min(created_at) AS first_queued, min(updated_at) AS first_accepted, "
                    "max(updated_at) AS last_accepted FROM messages "
                    "WHERE direction = 'outbound' AND provider_message_id IS NOT NULL")[0]
    start = times["first_accepted"] if phased else times["first_queued"]
    drained = Drained(
        queued=db.scalar("SELECT count(*) FROM messages WHERE direction = 'outbound'"), api=None if phased else api,
        accepted=db.scalar(accepted_sql),
        distinct=db.scalar("SELECT count(DISTINCT provider_message_id) FROM messages WHERE direction = 'outbound'"),
        left=db.scalar("SELECT count(*) FROM outbox"), arrived=arrivals["by_sender"],
        max_in_flight=arrivals["max_in_flight"], seconds=_seconds(times["last_accepted"]) - _seconds(start),
        busy=busy, worker_busy=worker_busy, samples=sampler)
    db.close()
    if phased:
        drained.api, drained.api_busy = api, api_busy
    return drained


def _seconds(value: object) -> float:
    from datetime import UTC, datetime

    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def per_number_rates(arrived: dict[str, list[float]]) -> dict[str, float]:
    """Each sender number's achieved rate at the fake, from its second arrival on: the first send's arrival is
    late by the client's warm-up (its first connection), which would squeeze the interval and overstate the rate."""
    rates = {}
    for number, times in arrived.items():
        times = sorted(times)
        if len(times) > 2 and times[-1] > times[1]:
            rates[number] = (len(times) - 2) / (times[-1] - times[1])
    return rates


def outbound_rows(ceiling: Load, args: argparse.Namespace, work: Path) -> tuple[list[Row], Drained]:
    rows: list[Row] = []
    base = fake_baseline("twilio", 0, args.seconds / 2)
    rows.append(Row("outbound baseline: Messages.json posted straight to the fake Twilio (no latency), "
                    f"{SENDS_IN_FLIGHT} connections", f"{base.requests_per_second:,.0f} msg/s, "
                    f"p99 {base.p99_ms:.1f} ms", "", "100%"))
    library = client_alone_rate("twilio", args.seconds / 2)
    rows.append(Row("the official twilio library alone (its async calls, as the plugin sets it up) to the fake "
                    f"Twilio, {SENDS_IN_FLIGHT} sends in flight, one process", f"{library:,.0f} msg/s",
                    f"{base.requests_per_second:,.0f} msg/s", _ratio(library, base.requests_per_second)))
    seeded = seed("twilio", args.consumers, work, args)
    n = args.outbound

    phased = drain("drain-twilio", seeded, n, latency=0, rate=0, phased=True, args=args, work=work)
    assert phased.api is not None
    rows.append(Row(f"agent replies queued through the API (sender off), sqlite, {n:,} to "
                    f"{args.consumers:,} conversations", _rate(phased.api),
                    f"{ceiling.requests_per_second:,.0f} req/s",
                    _ratio(phased.api.requests_per_second, ceiling.requests_per_second),
                    f"{_ok(phased.queued == n and phased.api.errors == 0)}: {phased.queued:,} queued, "
                    f"{phased.api.errors} errors", _host(phased.api_busy, n, "reply")))
    rows.append(Row("outbox drain alone to the fake Twilio (no latency), sqlite, throttling off",
                    f"{phased.rate:,.0f} msg/s", f"{base.requests_per_second:,.0f} msg/s",
                    _ratio(phased.rate, base.requests_per_second), phased.check(n), _host(phased.busy, n)))

    both = drain("end-to-end-twilio", seeded, n, latency=0, rate=0, phased=False, args=args, work=work, sample=True)
    rows.append(Row("outbound end to end (API and sender at once) to the fake Twilio (no latency), sqlite, "
                    "throttling off", f"{both.rate:,.0f} msg/s from first queued to last accepted",
                    f"{base.requests_per_second:,.0f} msg/s", _ratio(both.rate, base.requests_per_second),
                    both.check(n), _host(both.busy, n)))

    split = drain("end-to-end-twilio-split", seeded, n, latency=0, rate=0, phased=False, split=True, args=args,
                  work=work)
    rows.append(Row("outbound end to end, web process (`serve --no-worker`) and worker process (`smsconnector "
                    "worker`), to the fake Twilio (no latency), sqlite, throttling off",
                    f"{split.rate:,.0f} msg/s from first queued to last accepted",
                    f"{base.requests_per_second:,.0f} msg/s", _ratio(split.rate, base.requests_per_second),
                    split.check(n), f"web {_host(split.busy, n)}; worker {_host(split.worker_busy, n)}"))

    slow_base = fake_baseline("twilio", REALISTIC_LATENCY, args.seconds / 2)
    latency_ms = f"{REALISTIC_LATENCY * 1000:.0f} ms"
    rows.append(Row(f"outbound baseline: the fake Twilio answering in {latency_ms}, {SENDS_IN_FLIGHT} connections",
                    f"{slow_base.requests_per_second:,.0f} msg/s, p99 {slow_base.p99_ms:.1f} ms", "", "100%"))
    slow = drain("end-to-end-twilio-latency", seeded, n, latency=REALISTIC_LATENCY, rate=0, phased=False, args=args,
                 work=work)
    rows.append(Row(f"outbound end to end to the fake Twilio answering in {latency_ms}, sqlite, throttling off",
                    f"{slow.rate:,.0f} msg/s, {slow.max_in_flight} sends in flight at most",
                    f"{slow_base.requests_per_second:,.0f} msg/s", _ratio(slow.rate, slow_base.requests_per_second),
                    slow.check(n), _host(slow.busy, n)))

    per_number, numbers = 10.0, 4
    throttled_count = int(per_number * numbers * args.throttled_seconds)
    throttled = drain("throttled-twilio", seeded, throttled_count, latency=0, rate=per_number, phased=False,
                      args=args, work=work, numbers=numbers)
    rates = per_number_rates(throttled.arrived)
    fastest = max(rates.values(), default=0.0)
    rows.append(Row(f"outbound with throttling on: {per_number:g} segments/s per number, replies from {numbers} "
                    "numbers, fake Twilio, sqlite",
                    f"{throttled.rate:,.0f} msg/s in all; per number {min(rates.values(), default=0):.2f}-"
                    f"{fastest:.2f}/s at the fake", f"{per_number * numbers:g} msg/s configured",
                    _ratio(throttled.rate, per_number * numbers),
                    f"{_ok(fastest <= per_number * 1.01, 'OVER')} (fastest number <= {per_number:g}/s); "
                    + throttled.check(throttled_count), _host(throttled.busy, throttled_count)))

    om_base = fake_baseline("openmarket", 0, args.seconds / 2)
    rows.append(Row(f"outbound baseline: MTs posted straight to the fake OpenMarket (no latency), "
                    f"{SENDS_IN_FLIGHT} connections", f"{om_base.requests_per_second:,.0f} msg/s, "
                    f"p99 {om_base.p99_ms:.1f} ms", "", "100%"))
    om_client = client_alone_rate("openmarket", args.seconds / 2)
    rows.append(Row(f"the OpenMarket plugin's aiohttp client alone to the fake OpenMarket, {SENDS_IN_FLIGHT} sends in "
                    "flight (its pool: 20 connections), one process", f"{om_client:,.0f} msg/s",
                    f"{om_base.requests_per_second:,.0f} msg/s", _ratio(om_client, om_base.requests_per_second)))
    om_seeded = seed("openmarket", args.consumers, work, args)
    om = drain("end-to-end-openmarket", om_seeded, n, latency=0, rate=0, phased=False, args=args, work=work)
    rows.append(Row("outbound end to end to the fake OpenMarket (no latency), sqlite, throttling off",
                    f"{om.rate:,.0f} msg/s from first queued to last accepted",
                    f"{om_base.requests_per_second:,.0f} msg/s", _ratio(om.rate, om_base.requests_per_second),
                    om.check(n), _host(om.busy, n)))
    return rows, both


# -- reassembly --------------------------------------------------------------------------------------------


_WORDS = ("order", "parcel", "delivery", "tomorrow", "address", "refund", "please", "thanks", "window", "driver",
          "number", "invoice", "weekend", "morning", "change", "cancel", "today", "update", "payment", "box")


def long_texts(count: int, rng: random.Random) -> list[str]:
    """Texts of 3 to 5 parts: mostly GSM-7, every fifth one UCS-2 (an emoji or a letter GSM lacks)."""
    texts = []
    for n in range(count):
        parts = 3 + n % 3
        ucs2 = n % 5 == 4
        capacity = 66 if ucs2 else 152  # per part, beside a UDH with a 16-bit reference
        length = (parts - 1) * capacity + rng.randint(10, capacity - 5)
        words: list[str] = [f"#{n}"] + (["Żółw 🐢"] if ucs2 else [])
        while sum(len(w) + 1 for w in words) < length:
            words.append(rng.choice(_WORDS))
        texts.append(" ".join(words)[:length])
    return texts


def reassembly_rows(kind: str, ceiling: Load, args: argparse.Namespace, work: Path) -> list[Row]:
    folder = Path(tempfile.mkdtemp(dir=work))
    rng = random.Random(8)
    texts = long_texts(args.long_messages, rng)
    fake = FakeOpenMarket()
    first_ticket: dict[str, str] = {}
    bodies: list[str] = []
    consumers = 200
    for n, text in enumerate(texts):
        source = f"1415{5560000 + n % consumers:07d}"
        # A 16-bit reference, unique while the message is open, as a handset's counter gives.
        raws = split_for_concatenation(text, n + 1, reference_bits=16)
        parts = [fake.mo_part(raw, source=source, destination=BRAND[1:]) for raw in raws]
        first_ticket[parts[0]["mobileOriginate"]["ticketId"]] = text  # type: ignore[index]
        bodies += [openmarket_inbound(p) for p in parts]
    rng.shuffle(bodies)  # every message's parts spread across the whole run
    lines = write_lines(folder / "parts.txt", bodies)
    rows: list[Row] = []
    with database(kind, folder) as url:
        config = host_config(folder, url, numbers={BRAND: "openmarket"})
        migrate(config)
        db = Db(url)
        with host(config, folder) as server:
            with watched(server, f"reassembly-{kind}") as busy:
                load = wrk_once(server.url, lines, connections=args.connections, limit=600)
                db.wait_quiet(PENDING, until=0)
                db.wait_quiet("SELECT count(*) FROM messages WHERE direction = 'inbound'")
        stored = db.rows("SELECT provider_message_id, body, incomplete FROM messages "
                         "WHERE direction = 'inbound' AND provider = 'openmarket'")
        open_groups = db.scalar("SELECT count(*) FROM segment_groups WHERE completed_at IS NULL")
        db.close()
    exact = sum(1 for r in stored if first_ticket.get(r["provider_message_id"]) == r["body"] and not r["incomplete"])
    incomplete = sum(1 for r in stored if r["incomplete"])
    per_message = {r["provider_message_id"] for r in stored}
    good = exact == len(texts) == len(stored) == len(per_message) and open_groups == 0 and load.errors == 0
    parts_per_second = load.requests_per_second
    rows.append(Row(
        f"reassembly: {len(texts):,} OpenMarket messages of 3-5 parts ({len(bodies):,} parts, shuffled), {kind}",
        f"{parts_per_second:,.0f} parts/s answered ({len(texts) / load.seconds:,.0f} messages/s), "
        f"p50 {load.p50_ms:.1f} ms, "
        f"p99 {load.p99_ms:.1f} ms", f"{ceiling.requests_per_second:,.0f} req/s",
        _ratio(parts_per_second, ceiling.requests_per_second),
        f"{_ok(good, 'WRONG')}: {exact:,} of {len(texts):,} stored once with the exact text, {len(stored):,} stored, "
        f"{incomplete} incomplete, {open_groups} groups open, {load.errors} errors", _host(busy, len(bodies), "part")))
    return rows


# -- memory ------------------------------------------------------------------------------------------------


def memory_row(label: str, sampler: RssSampler, total: int, done: int) -> Row:
    """RSS when half was done, when all was done, and the peak; flat means within 10 % over the second half."""
    half, whole = sampler.at_progress(0.5, done), sampler.at_progress(1.0, done)
    after = sampler.samples[-1]
    growth = (whole.rss_kib - half.rss_kib) / half.rss_kib
    size = f"{done:,}" if done == total else f"{done:,} of {total:,} (time limit)"
    return Row(f"memory: host RSS over {size} {label}",
               f"{half.rss_kib / 1024:,.0f} MiB at 50%, {whole.rss_kib / 1024:,.0f} MiB at 100%, "
               f"{after.rss_kib / 1024:,.0f} MiB after, peak {sampler.peak_kib() / 1024:,.0f} MiB",
               "RSS at 50%", f"{growth:+.1%}",
               f"{_ok(abs(growth) <= 0.10, 'GROWS')} (flat within 10% over the second half); "
               f"{len(sampler.samples)} samples, 1/s")


def memory_rows(args: argparse.Namespace, work: Path) -> list[Row]:
    folder = Path(tempfile.mkdtemp(dir=work))
    url = f"sqlite:///{folder / 'bench.db'}"
    config = host_config(folder, url, numbers={BRAND: "twilio"})
    migrate(config)
    total = args.memory_messages
    lines = write_lines(folder / "memory.txt", [twilio_inbound(n, prefix="SMme", consumers=5000)[1]
                                                for n in range(total)])
    db = Db(url)
    inbound = "SELECT count(*) FROM messages WHERE direction = 'inbound'"
    with host(config, folder) as server, RssSampler(server.pid, lambda: db.scalar(inbound)) as sampler, \
            watched(server, "memory-inbound") as busy:
        load = wrk_once(server.url, lines, connections=args.connections, limit=args.memory_limit)
        db.wait_quiet(PENDING, until=0, limit=1200)
        done = db.wait_quiet(inbound)
        time.sleep(3)  # the host idle after the run: what it keeps
    twice = db.scalar("SELECT count(*) - count(DISTINCT provider_message_id) FROM messages")
    db.close()
    row = memory_row(f"inbound messages, sqlite ({load.requests_per_second:,.0f} msg/s)", sampler, total, done)
    row.check += f"; {_ok(done >= load.requests - load.errors and twice == 0, 'LOST OR TWICE')}: {done:,} stored"
    row.host = _host(busy, done)
    return [row]


# -- the table ---------------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    return (f"smsconnector benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}, {harness.server_stack()}, {args.connections} wrk connections, "
            f"{args.seconds:g} s per timed run, at least {args.messages:,} distinct inbound messages a burst, "
            f"{args.outbound:,} replies per outbound run, {'--quick' if args.quick else 'full run'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer messages")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=None, help="length of each timed run")
    parser.add_argument("--messages", type=int, default=None,
                        help="distinct inbound messages a burst, at least (more when the ceiling's rate would use "
                        "them up)")
    parser.add_argument("--outbound", type=int, default=None, help="agent replies per outbound run")
    parser.add_argument("--consumers", type=int, default=None, help="conversations the replies go to")
    parser.add_argument("--long-messages", type=int, default=500, help="long messages in the reassembly run")
    parser.add_argument("--memory-messages", type=int, default=None, help="inbound messages in the memory run")
    parser.add_argument("--memory-limit", type=float, default=None, help="seconds the memory run may take at most")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record each measured host with py-spy into this folder (raw collapsed stacks)")
    parser.add_argument("--only", nargs="*", choices=["inbound", "outbound", "reassembly", "memory"],
                        help="run only these scenarios (the ceilings always run)")
    args = parser.parse_args()
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    args.messages = args.messages or (30_000 if args.quick else 100_000)
    args.outbound = args.outbound or (500 if args.quick else 5_000)
    args.consumers = args.consumers or (200 if args.quick else 1_000)
    args.backlog = 10_000 if args.quick else 30_000
    args.throttled_seconds = 3.0 if args.quick else 8.0
    args.memory_messages = args.memory_messages or (4_000 if args.quick else 100_000)
    args.memory_limit = args.memory_limit or (90.0 if args.quick else 300.0)
    harness.PROFILE_DIR = args.profile
    only = set(args.only or ["inbound", "outbound", "reassembly", "memory"])

    work = Path(tempfile.mkdtemp(prefix="smsconnector-bench-"))
    rows: list[Row] = []
    started = time.monotonic()
    try:
        form_ceiling, json_ceiling, ceiling_rows = ceilings(args, work)
        rows += ceiling_rows
        from smsconnector.testing.database import postgres_available

        kinds = ["sqlite"] + (["postgres"] if postgres_available() is None else [])
        if "inbound" in only:
            for kind in kinds:
                rows += inbound_rows(kind, args, work)
            rows += paired_rows(args, work)
            for kind in kinds:
                rows += steady_rows(kind, form_ceiling, args, work)
            if "postgres" in kinds:
                rows += steady_rows("postgres", form_ceiling, args, work, split=True)
            for kind in kinds:
                rows += inbound_split_rows(kind, form_ceiling, args, work)
            if "postgres" in kinds:
                rows += inbound_split_rows("postgres", form_ceiling, args, work, workers=2)
            rows += backlog_rows(kinds, args, work)
        if "outbound" in only:
            outbound, sampled = outbound_rows(form_ceiling, args, work)
            rows += outbound
            if sampled.samples is not None and "memory" in only:
                rows.append(memory_row("replies sent end to end, sqlite", sampled.samples, args.outbound,
                                       sampled.accepted))
        if "reassembly" in only:
            for kind in kinds:
                rows += reassembly_rows(kind, json_ceiling, args, work)
        if "memory" in only:
            rows += memory_rows(args, work)
        if postgres_available() is not None:
            rows.append(Row("postgres", "skipped", check=str(postgres_available())))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{header(args)}; took {(time.monotonic() - started) / 60:.1f} min\n")
    print("| scenario | figure | baseline | ratio | check | host |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.scenario} | {row.figure} | {row.baseline} | {row.ratio} | {row.check} | {row.host} |")


if __name__ == "__main__":
    main()
