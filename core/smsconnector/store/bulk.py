"""Statements over many rows whose text does not depend on how many: inserts, updates and lookups, on either
database.

On PostgreSQL the rows travel as one parameter, a JSON array of objects written by orjson, which the statement
reads back as rows (``json_to_recordset(:batch) AS batch(number VARCHAR(20), created_at TIMESTAMPTZ, ...)``).
The statement's text is the same for one row or a thousand, so the driver converts it once and the server
prepares and plans it once: a ``VALUES`` list with a parameter a column a row, which SQLAlchemy writes for an
executemany with ``RETURNING``, is a new statement at every batch size, a few thousand parameters long, that
the driver splits with a regular expression and the server parses and plans each time (about a sixth of a
PostgreSQL worker's CPU, with the planning on top on the server). One JSON text rather than an array a column,
because the driver writes array literals in Python, an element at a time (a sixth of the worker's CPU again),
where orjson writes the whole batch in C. SQLite, in process, gains nothing from it and keeps SQLAlchemy's
statements.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Integer, Row, Table, Text, bindparam, cast, column, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["among", "among_params", "insert_all", "insert_new", "params", "rows_of", "selected", "update_all"]

#: the one parameter of a PostgreSQL statement of this module: the rows, as JSON
BATCH = "batch_rows"
#: the field that numbers the rows (from 0) where their order matters
ORDINALITY = "ordinality"


async def insert_all(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` with one statement; their ids, in the rows' order."""
    if not rows:
        return []
    if session.bind.dialect.name == "sqlite":
        # SQLite numbers each new row one past the largest id so far, row after row in the statement's order, but
        # returns them in no set order; SQLAlchemy, which cannot assume the numbering, would insert one row a
        # statement to keep the order. Sorted, the ids are in the rows' order.
        return sorted((await session.exec(_insert(table), params=rows)).scalars())
    # The rows are read in their order (ORDER BY their number) and take their ids from the sequence in the order
    # they arrive, so the ids sorted are the rows' ids in order: how SQLAlchemy orders RETURNING too.
    connection = await session.connection()
    statement = _insert_batch(table, tuple(rows[0]), conflict=None, returning=("id",), ordered=True)
    numbered = [{**row, ORDINALITY: n} for n, row in enumerate(rows)]
    return sorted((await connection.execute(statement, params(table, numbered))).scalars())


async def insert_new(connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *,
                     conflict: tuple[str, ...], returning: tuple[str, ...] = ()) -> Sequence[Row[Any]]:
    """Insert the ``rows`` whose ``conflict`` columns match no stored row (nor an earlier row of ``rows``), with
    one statement; ``returning`` of each row inserted, in no set order."""
    if not rows:
        return []
    if connection.dialect.name == "sqlite":
        result = await connection.execute(_insert_sqlite(table, conflict, returning), list(rows))
    else:
        statement = _insert_batch(table, tuple(rows[0]), conflict=conflict, returning=returning, ordered=False)
        result = await connection.execute(statement, params(table, rows))
    return result.all() if returning else []


async def update_all(connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *,
                     key: str = "id") -> None:
    """Give each row of ``table`` whose ``key`` is a row's of ``rows`` that row's other values, with one statement
    (on SQLite, one statement run for each row, in process)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if connection.dialect.name == "sqlite":
        await connection.execute(_update_sqlite(table, columns, key),
                                 [{f"new_{name}": value for name, value in row.items()} for row in rows])
    else:
        await connection.execute(_update_batch(table, columns, key), params(table, rows))


def among(table: Table, columns: tuple[str, ...], dialect: str) -> Any:
    """``(columns) IN (...)`` the rows bound by :func:`among_params`, for a statement on ``dialect``."""
    target = tuple_(*(table.c[name] for name in columns)) if len(columns) > 1 else table.c[columns[0]]
    if dialect == "postgresql":
        batch = rows_of(table, columns)
        return target.in_(select(*(selected(table, batch, name) for name in columns)))
    return target.in_(bindparam("among", expanding=True))


def among_params(connection: Any, table: Table, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of :func:`among` for ``rows`` (each a value of each of its columns)."""
    if connection.dialect.name == "postgresql":
        return params(table, rows)
    names = list(rows[0])
    return {"among": [tuple(row[name] for name in names) if len(names) > 1 else row[names[0]] for row in rows]}


def rows_of(table: Table, columns: tuple[str, ...], *, ordered: bool = False) -> Any:
    """``json_to_recordset(:batch_rows) AS batch(column TYPE, ...)``: the rows of :func:`params` on PostgreSQL,
    each column typed as ``table``'s (a JSON column's value is read as JSON); with ``ordered``, also their
    :data:`ORDINALITY`, which each row must then carry."""
    typed = [column(name, Text() if name in _json_columns(table) else table.c[name].type) for name in columns]
    if ordered:
        typed.append(column(ORDINALITY, Integer()))
    return (func.json_to_recordset(bindparam(BATCH)).table_valued(*typed)
            .render_derived("batch", with_types=True))


def selected(table: Table, rows: Any, name: str) -> Any:
    """Column ``name`` of :func:`rows_of` rows, as ``table``'s column takes it."""
    return cast(rows.c[name], JSON) if name in _json_columns(table) else rows.c[name]


def params(table: Table, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The parameter of a statement over :func:`rows_of` ``rows`` of ``table``.

    A JSON column's value goes as its own JSON text, read back as JSON (:func:`selected`): read as JSON within
    the batch's document, a string holding a NUL (which a payload may, and a JSON column can keep) would fail
    the whole batch, every webhook's in it.
    """
    json_columns = _json_columns(table).intersection(rows[0])
    if json_columns:
        rows = [{**row, **{name: _dumps(row[name]) for name in json_columns if row[name] is not None}} for row in rows]
    return {BATCH: _dumps(rows)}


def _dumps(value: Any) -> str:
    # As the engine writes a JSON column (store.db): keys that are not strings become strings.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@functools.cache
def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


@functools.cache
def _insert_batch(table: Table, columns: tuple[str, ...], *, conflict: tuple[str, ...] | None,
                  returning: tuple[str, ...], ordered: bool) -> Any:
    """``INSERT INTO table (columns) SELECT ... FROM json_to_recordset(...)``, in the rows' order if ``ordered``."""
    batch = rows_of(table, columns, ordered=ordered)
    rows = select(*(selected(table, batch, name) for name in columns))
    statement = postgresql.insert(table).from_select(columns, rows.order_by(batch.c[ORDINALITY]) if ordered else rows)
    if conflict is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement


@functools.cache
def _update_batch(table: Table, columns: tuple[str, ...], key: str) -> Any:
    batch = rows_of(table, columns)
    return (update(table).where(table.c[key] == batch.c[key])
            .values({name: selected(table, batch, name) for name in columns if name != key}))


@functools.cache
def _update_sqlite(table: Table, columns: tuple[str, ...], key: str) -> Any:
    # Parameters are renamed: SQLAlchemy keeps a column's own name for the value a statement sets it to.
    return (update(table).where(table.c[key] == bindparam(f"new_{key}"))
            .values({name: bindparam(f"new_{name}") for name in columns if name != key}))


@functools.cache
def _insert(table: Table) -> Any:
    # Built once per table: building a statement per batch costs about as much as running it.
    return insert(table).returning(table.c.id, sort_by_parameter_order=False)


@functools.cache
def _insert_sqlite(table: Table, conflict: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement
