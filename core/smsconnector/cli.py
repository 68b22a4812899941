"""The ``smsconnector`` command: serve, worker, demo, plugins, db upgrade, segments, send, new-provider."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import Config, default_config_path, load_config
from .errors import MessageRejected, SmsConnectorError
from .segments import segment

DEMO_NUMBER = "+15555550100"
DEMO_DATABASE = "smsconnector-demo.db"
DEMO_AGENT = "Demo agent"


def _config(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(args.config or default_config_path(), overrides=overrides)


def _app(config: Config) -> Any:
    from .app import App

    return App(config)


def configure_logging(level: str) -> None:
    """Send every log of the process -- the host's, its plugins', uvicorn's -- to stderr in one format, from
    ``level`` up. The SQLite driver stays at info or above whatever the level: its debug lines print each
    statement with its parameters, and those are consumers' texts. Access lines leave out the query string."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(_path_without_query)
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    # The start-up check for pending migrations would say "Context impl SQLiteImpl." at every start.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


def _path_without_query(record: logging.LogRecord) -> bool:
    """Keep an access line's path but not its query, which may carry a consumer's number (``?consumer=+1...``).

    uvicorn logs ``client - "METHOD path?query HTTP/version" status``, the path with its query third.
    """
    args = record.args
    if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
        record.args = (*args[:2], args[2].partition("?")[0], *args[3:])
    return True


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args, {"worker": {"in_server": False}} if args.no_worker else None)
    configure_logging(config.log_level)
    app = _app(config)
    if args.upgrade:
        app.upgrade_database()
    from .server import serve

    serve(app, host=args.host, port=args.port, log_level=app.config.log_level)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging(config.log_level)
    asyncio.run(run_worker(_app(config), metrics=(args.metrics_host, args.metrics_port)
                           if args.metrics_port is not None else None))
    return 0


async def run_worker(app: Any, *, metrics: tuple[str, int] | None = None) -> None:
    """Do the background work until SIGINT or SIGTERM, then stop as the server does: sends in flight finish
    and are recorded. ``metrics``: serve this process's Prometheus metrics at that address meanwhile."""
    from .metrics import serve_exposition

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with app.running(serving=False, working=True):
        exposition = None
        if metrics:
            # The exposition server runs in a thread of its own: it only reads the counters.
            token = app.config.metrics.token
            try:
                exposition = serve_exposition(app.metrics.registry, *metrics,
                                              token=token and token.get_secret_value())
            except OSError as exc:
                raise SmsConnectorError(f"cannot serve metrics at {metrics[0]}:{metrics[1]}: {exc.strerror}") from None
        sending = "draining the outbox" if app.config.sender.enabled else "not sending ([sender] enabled = false)"
        woken = "woken by other processes' commits, and looking" if app.store.dialect == "postgresql" else "looking"
        print(f"smsconnector worker: routing the inbox, {sending}, {woken} for work every "
              f"{app.config.worker.poll_seconds(app.store.dialect):g} s"
              + (f"; metrics at http://{metrics[0]}:{metrics[1]}/metrics" if metrics else ""),
              file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            if exposition is not None:
                exposition.shutdown()
                exposition.server_close()
    print("smsconnector worker: stopped", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    base = f"http://{args.host}:{args.port}"
    config = _config(args, overrides={
        "database_url": f"sqlite:///{args.database}", "public_url": base,
        "numbers": [{"number": DEMO_NUMBER, "provider": "simulator", "skill": "support", "rate_per_second": 0}],
        "plugins": {"enabled": ["simulator"]},
    })
    configure_logging(config.log_level)
    app = _app(config)
    app.upgrade_database()
    agent_id, token, code = asyncio.run(prepare_demo_agent(app))
    auth = f"-H 'authorization: Bearer {token}'"
    print(f"""smsconnector demo: SQLite at {args.database}, the simulator as provider, brand number {DEMO_NUMBER}.

In a browser:
  The agent workspace, signed in as "{DEMO_AGENT}" by this link (it works once, within 10 minutes):
    {base}/workspace#code={code}
  A consumer's phone, to text the brand:  {base}/simulator/phone
  (Later, sign in to the workspace with the agent token below.)

Or with curl:

1. Text the brand as a consumer would:
  curl -s {base}/webhooks/simulator/inbound -H 'content-type: application/json' \\
    -d '{{"id": "demo-1", "from": "+14155550123", "to": "{DEMO_NUMBER}", "text": "Hi, is my order on its way?"}}'
  Post it again: it is stored once (the provider-retry case).

2. Answer as "{DEMO_AGENT}" (agent {agent_id}: skill support, online; a new token on every demo start):
  Your conversations:  curl -s {base}/api/conversations {auth}
  Read one:            curl -s {base}/api/conversations/1 {auth}
  Reply:               curl -s {base}/api/conversations/1/messages {auth} \\
                         -H 'content-type: application/json' -d '{{"text": "It ships today."}}'
  Live events:         curl -sN {base}/api/events {auth}
  (1 is the first conversation's id; take the ids from the list.)

3. See what the consumer's phone received:  curl -s {base}/simulator/outbox

The whole API is described at {base}/openapi.json; health: {base}/healthz
""", flush=True)
    # uvicorn's own lines would bury the instructions; the host's warnings still show
    from .server import serve

    serve(app, host=args.host, port=args.port, log_level="warning")
    return 0


async def prepare_demo_agent(app: Any) -> tuple[int, str, str]:
    """Create the demo agent once (skill ``support``, online) and give it a fresh token and a one-time code that
    signs the workspace in as the agent: ``(id, token, code)``.

    Tokens are kept only as digests, so every start issues a new one to print.
    """
    from sqlalchemy import select

    from . import assignment, sessions
    from .api import ensure_skills
    from .auth import Principal, new_token, token_digest
    from .store.models import Agent, AgentSkill

    token = new_token()
    try:
        async with app.store.transaction() as session:
            await ensure_skills(session, ["support"])
            agent = (await session.exec(select(Agent).where(Agent.name == DEMO_AGENT, Agent.deleted_at.is_(None))
                                        .order_by(Agent.id))).scalars().first()
            if agent is None:
                agent = Agent(name=DEMO_AGENT, max_concurrent=5)
                session.add(agent)
                await session.flush()
            if await session.get(AgentSkill, (agent.id, "support")) is None:
                session.add(AgentSkill(agent_id=agent.id, skill="support"))
            agent.token_hash = token_digest(token)
            await assignment.set_status(session, agent, "online")
            code = await sessions.issue(session, Principal("agent", agent.id), "code", sessions.CODE_LIFETIME)
            return agent.id, token, code.token
    finally:
        await app.store.close()  # the server opens its own connections on its own event loop


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import load_plugins

    config = _config(args)
    _, infos = load_plugins(config.plugins.disabled, enabled=config.plugins.enabled)
    if args.json:
        print(json.dumps([{"name": i.name, "distribution": i.distribution, "version": i.version,
                           "enabled": i.enabled, "hooks": list(i.hooks)} for i in infos], indent=2))
        return 0
    rows = [("NAME", "DISTRIBUTION", "VERSION", "ENABLED", "HOOKS")]
    rows += [(i.name, i.distribution or "-", i.version or "-", "yes" if i.enabled else "no",
              ", ".join(h.removeprefix("smsconnector_") for h in i.hooks) or "-") for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:4])) + "  " + row[4])
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    app = _app(_config(args))
    app.upgrade_database()
    print(f"database at {app.store.sync_url.render_as_string(hide_password=True)} is up to date")
    return 0


def cmd_segments(args: argparse.Namespace) -> int:
    result = segment(args.text, smart_encoding=args.smart)
    if args.json:
        print(json.dumps({"encoding": result.encoding, "segments": list(result.segments), "count": result.count,
                          "units": result.units, "non_gsm_characters": list(result.non_gsm_characters),
                          "text": result.text}, ensure_ascii=False, indent=2))
        return 0
    print(f"encoding: {result.encoding}")
    print(f"segments: {result.count}")
    if result.non_gsm_characters:
        shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in result.non_gsm_characters)
        print(f"forces UCS-2: {shown}")
    for number, text in enumerate(result.segments, start=1):
        print(f"[{number}] {text}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from . import outbound

    overrides: dict[str, Any] = {"sender": {"enabled": False}}
    if args.database:
        overrides["database_url"] = f"sqlite:///{args.database}"
    config = _config(args, overrides)
    from_number = args.from_number or (config.numbers[0].number if config.numbers else DEMO_NUMBER)
    number = config.number(from_number)
    provider = args.provider or (number.provider if number else "simulator")
    app = _app(config)

    async def queue() -> int:
        try:
            async with app.store.transaction() as session:
                message = await outbound.queue(session, provider=provider, from_number=from_number,
                                               to_number=args.to, text=args.text)
            return message.id or 0
        finally:
            await app.store.close()

    message_id = asyncio.run(queue())
    print(f"queued message {message_id} from {from_number} to {args.to} via {provider}; the running server sends it")
    return 0


def cmd_new_provider(args: argparse.Namespace) -> int:
    from .scaffold import new_provider

    target = new_provider(args.name, args.directory)
    print(f"wrote the provider plugin smsconnector-{args.name} in {target}")
    print(f"next: pip install -e {target}, then run pytest there: each failing test names what to write")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsconnector", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file (default: $SMSCONNECTOR_CONFIG "
                                                    "or ./smsconnector.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--upgrade", action="store_true", help="apply pending migrations first")
    serve.add_argument("--no-worker", action="store_true",
                       help="only answer HTTP: leave routing and sending to `smsconnector worker` processes")
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="route the inbox and drain the outbox, without serving HTTP "
                                                "(beside `serve --no-worker`, or as many as the work needs)")
    worker.add_argument("--metrics-port", type=int, help="serve this worker's Prometheus metrics on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    demo = commands.add_parser("demo", help="run on SQLite with the simulator: no provider account needed")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--database", default=DEMO_DATABASE)
    demo.set_defaults(func=cmd_demo)

    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    db = commands.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(func=cmd_db_upgrade)

    segments = commands.add_parser("segments", help="how a text is encoded and split into SMS segments")
    segments.add_argument("text")
    segments.add_argument("--json", action="store_true")
    segments.add_argument("--smart", action="store_true", help="apply smart encoding first")
    segments.set_defaults(func=cmd_segments)

    send = commands.add_parser("send", help="queue an outbound message")
    send.add_argument("--to", required=True)
    send.add_argument("--text", required=True)
    send.add_argument("--from", dest="from_number")
    send.add_argument("--provider")
    send.add_argument("--database", help="SQLite file (shortcut for database_url)")
    send.set_defaults(func=cmd_send)

    new = commands.add_parser("new-provider", help="write the skeleton of a provider plugin distribution, "
                                                   "smsconnector-NAME, that runs the provider contract suite")
    new.add_argument("name", help="the provider's name: a lower-case Python identifier (acme, acme_sms)")
    new.add_argument("--directory", type=Path,
                     help="where to write it; must not exist (default: ./smsconnector-NAME)")
    new.set_defaults(func=cmd_new_provider)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MessageRejected as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    except SmsConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
