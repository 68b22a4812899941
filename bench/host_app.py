"""The host exactly as ``smsconnector.asgi:app`` builds it, counting the SQL it runs.

Every statement the host's engine executes is counted by its first word (SELECT, INSERT, ...), and every
commit too; ``GET /bench/statements`` answers the counts so far. The benchmark reads them before and after a
run: statements per message is a figure that does not drift with the machine. On SQLite the inbox writes plain
SQL past SQLAlchemy (``Store.sqlite_transaction``); SQLite's own trace of those statements counts them.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from starlette.types import Receive, Scope, Send

from smsconnector.asgi import app as host

counts: Counter[str] = Counter()


@event.listens_for(host.store.engine.sync_engine, "before_cursor_execute")
def _statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
    counts[statement.lstrip().split(None, 1)[0].upper()] += 1


@event.listens_for(host.store.engine.sync_engine, "commit")
def _commit(_conn: Any) -> None:
    counts["COMMIT"] += 1


_sqlite_transaction = host.store.sqlite_transaction


async def _traced_sqlite_transaction(work: Callable[[sqlite3.Connection], Any]) -> Any:
    def traced(connection: sqlite3.Connection) -> Any:
        connection.set_trace_callback(lambda statement: _statement(None, None, statement))
        try:
            return work(connection)
        finally:
            connection.set_trace_callback(None)

    result = await _sqlite_transaction(traced)
    counts["COMMIT"] += 1
    return result


host.store.sqlite_transaction = _traced_sqlite_transaction  # type: ignore[method-assign]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/bench/statements":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(counts).encode()})
        return
    await host(scope, receive, send)
