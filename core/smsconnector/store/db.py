"""Opening the database (SQLite embedded, PostgreSQL to scale out) and migrating it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import ConfigError
from . import sqlite

MIGRATIONS = Path(__file__).parent / "migrations"

T = TypeVar("T")


def _urls(database_url: str) -> tuple[URL, URL]:
    """The (async, sync) driver URLs for a plain ``sqlite:///`` or ``postgresql://`` URL."""
    try:
        url = make_url(database_url)
    except Exception:
        raise ConfigError("database_url", f"not a database URL: {database_url!r}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite"), url.set(drivername="sqlite")
    if backend == "postgresql":
        # psycopg 3 speaks both: the async engine picks its async flavour under the same name.
        return url.set(drivername="postgresql+psycopg"), url.set(drivername="postgresql+psycopg")
    raise ConfigError("database_url", f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _json_text(value: Any) -> str:
    """JSON for a JSON column: orjson writes it ten times faster than ``json.dumps`` (a webhook's inbox entry
    is one), as compact UTF-8 text; keys that are not strings are written as strings, as ``json.dumps`` does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers (the agent API) work while the webhook path writes; FULL keeps a committed
        # message through a power cut, which is what "persist before acknowledging" means.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return apply


class Store:
    """The database: an async engine for the app and a sync one for migrations."""

    def __init__(self, database_url: str) -> None:
        self.async_url, self.sync_url = _urls(database_url)
        self.dialect = self.async_url.get_backend_name()
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            # One connection: SQLite has one writer, and queueing for it in the pool is cheaper and
            # kinder than retrying "database is locked".
            options.update(pool_size=1, max_overflow=0, pool_timeout=60,
                           connect_args={"async_creator_fn": sqlite.connect})
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        # hide_parameters: a failed statement's error (logged, and shown in tracebacks) names its SQL but not its
        # values, which are consumers' texts and numbers.
        self.engine: AsyncEngine = create_async_engine(self.async_url, json_serializer=_json_text,
                                                       json_deserializer=orjson.loads, hide_parameters=True, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(sqlite.INLINE_BUSY_MS))
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        #: called with the events a transaction emitted, right after it commits
        self.on_commit: Callable[[list[Any]], None] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back if it raises.

        Events emitted in it (``smsconnector.events.emit``) are published after the commit.
        """
        async with self._sessions() as session:
            async with session.begin():
                yield session
            events = session.info.pop("events", None)
        if events and self.on_commit is not None:
            self.on_commit(events)

    async def sqlite_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """On SQLite, ``work(connection)`` in one transaction on the store's connection, run in the driver's
        thread (:meth:`.sqlite.InlineConnection.transact`): for a hot path's plain SQL, whose cost on the event
        loop would otherwise be SQLAlchemy's and a second hop for the commit. SQLAlchemy's events do not see it.
        """
        assert self.dialect == "sqlite"
        async with self.engine.connect() as connection:  # the pool's one connection, in turn with the others
            raw = await connection.get_raw_connection()
            return await raw.driver_connection.transact(work)

    def session(self) -> AsyncSession:
        """A session for reads (or for managing the transaction yourself)."""
        return self._sessions()

    async def close(self) -> None:
        await self.engine.dispose()

    def upgrade(self, extra_locations: Iterable[Path] = ()) -> None:
        """Apply every pending migration: the host's and each plugin's branch."""
        from alembic import command

        engine = create_engine(self.sync_url)
        if self.dialect == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas(sqlite.PATIENT_BUSY_MS))
        try:
            with engine.begin() as connection:
                config = alembic_config(extra_locations)
                config.attributes["connection"] = connection
                command.upgrade(config, "heads")
        finally:
            engine.dispose()


def pending_migrations(sync_url: URL, extra_locations: Iterable[Path] = ()) -> int:
    """How many migrations the database at ``sync_url`` still needs (blocking)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(extra_locations))
    engine = create_engine(sync_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    # what `alembic upgrade heads` would run (alembic's own plan, dependencies between branches included)
    return len(script._upgrade_revs("heads", current))


def alembic_config(extra_locations: Iterable[Path] = ()) -> Any:
    """An Alembic configuration over the host's revisions and the given plugin revision folders."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    locations = [MIGRATIONS / "versions", *extra_locations]
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    return config
