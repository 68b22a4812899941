"""Routing alone, in process: the inbox filled, then routed by the inbox processor; what a message costs.

    python bench/routing.py [--messages 20000] [--per-consumer 1] [--agents 0]

No HTTP and no provider: the entries go into the inbox as webhooks would leave them, then one process routes them
all, as a worker does after a burst. It prints messages routed a second, the host's CPU per message (this
process only) and statements per message, on SQLite and on PostgreSQL (when a server answers at
``SMSCONNECTOR_TEST_POSTGRES_URL``), each beside SQLite's figure of the same run, and on PostgreSQL the database
server's CPU a message apart (when the server runs on this machine). Seconds, not minutes: the loop to iterate
on when changing the routing path; ``run.py`` measures it whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text

from smsconnector.app import App
from smsconnector.config import load_config
from smsconnector.messages import InboundMessage
from smsconnector.store.models import InboxEntry, Message
from smsconnector.testing.database import postgres_available, postgres_schema

BRAND = "+14155550100"


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'routing.db'}"
    else:
        with postgres_schema() as url:
            yield url


async def measure(kind: str, messages: int, per_consumer: int, agents: int) -> dict[str, Any]:
    with database(kind) as url:
        config = load_config(env={}, overrides={
            "database_url": url, "log_level": "warning",
            "numbers": [{"number": BRAND, "provider": "twilio", "skill": "support"}],
            "plugins": {"disabled": ["ivr", "adkeywords", "automation"],
                        "twilio": {"account_sid": "AC" + "b" * 32, "auth_token": "bench"}},
        })
        app = App(config)
        app.upgrade_database()
        counts: Counter[str] = Counter()
        event.listen(app.store.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _k, statement, *_: counts.update([statement.lstrip().split(None, 1)[0].upper()]))
        event.listen(app.store.engine.sync_engine, "commit", lambda _c: counts.update(["COMMIT"]))
        async with app.running(serving=False, working=False):
            if agents:
                await _agents_online(app, agents)
            consumers = max(1, messages // per_consumer)
            items = [InboundMessage(provider="twilio", provider_message_id=f"SM{n:030d}",
                                    from_number=f"+1415{2000000 + n % consumers:07d}", to_number=BRAND,
                                    text=f"hello {n}") for n in range(messages)]
            for start in range(0, len(items), 500):
                await app.inbox.put("twilio", items[start:start + 500])
            counts.clear()
            server = await _server_cpu(app)
            cpu, wall = time.process_time(), time.perf_counter()
            while await app.processor.process(app.config.inbound.batch_size):
                pass
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server = {pid: seconds - server.get(pid, 0.0) for pid, seconds in (await _server_cpu(app)).items()}
            async with app.store.session() as session:
                routed = (await session.exec(select(func.count()).select_from(Message))).scalar_one()
                pending = (await session.exec(select(func.count()).select_from(InboxEntry)
                                              .where(InboxEntry.processed_at.is_(None)))).scalar_one()
    return {"kind": kind, "routed": routed, "pending": pending, "rate": routed / wall, "cpu_ms": cpu / routed * 1000,
            "server_ms": sum(server.values()) / routed * 1000 if server else None,
            "sql": sum(v for k, v in counts.items() if k != "COMMIT") / routed, "commits": counts["COMMIT"] / routed}


async def _server_cpu(app: App) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving this run's connections (read from /proc: the server is on
    this machine); none on SQLite, whose work is in this process."""
    if app.store.dialect != "postgresql":
        return {}
    async with app.store.session() as session:
        pids = (await session.exec(text("SELECT pid FROM pg_stat_activity "
                                        "WHERE application_name = current_setting('application_name')"))).scalars()
        seconds = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the server is on another machine
                return {}
            seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return seconds


async def _agents_online(app: App, agents: int) -> None:
    from smsconnector import assignment
    from smsconnector.store.models import Agent, AgentSkill

    async with app.store.transaction() as session:
        for n in range(agents):
            agent = Agent(name=f"agent {n}", max_concurrent=10_000)
            session.add(agent)
            await session.flush()
            session.add(AgentSkill(agent_id=agent.id, skill="support"))
            await session.flush()
            await assignment.set_status(session, agent, "online")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--per-consumer", type=int, default=1, help="messages from each consumer")
    parser.add_argument("--agents", type=int, default=0, help="online agents with the skill (0: all queue)")
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgres"] if postgres_available() is None else [])
    results = [asyncio.run(measure(kind, args.messages, args.per_consumer, args.agents)) for kind in kinds]
    base = results[0]
    print(f"routing {args.messages:,} inbox entries in process, {args.per_consumer} per consumer, "
          f"{args.agents} agents online")
    for r in results:
        check = "ok" if r["routed"] == args.messages and r["pending"] == 0 else f"NOT ROUTED: {r['pending']} pending"
        print(f"{r['kind']:>8}: {r['rate']:8,.0f} msg/s ({r['rate'] / base['rate']:.0%} of sqlite), CPU "
              f"{r['cpu_ms']:.3f} ms a message ({r['cpu_ms'] / base['cpu_ms']:.0%}), {r['sql']:.2f} SQL and "
              f"{r['commits']:.3f} commits a message; {check}")
        if r["server_ms"] is not None:
            print(f"{'':>10}the database server's CPU: {r['server_ms']:.3f} ms a message")
    if any(r["pending"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
