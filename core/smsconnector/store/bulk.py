"""Statements over many rows whose text does not depend on how many: inserts, updates and lookups, on either
database.

On PostgreSQL the rows travel as one array a column and the statement unnests them (``INSERT ... SELECT ... FROM
unnest($1::varchar[], $2::json[], ...)``), so its text is the same for one row or a thousand: the driver converts
it once and the server prepares and plans it once. A ``VALUES`` list with a parameter a column a row, which
SQLAlchemy writes for an executemany with ``RETURNING``, is a new statement at every batch size, a few thousand
parameters long, that the driver splits with a regular expression and the server parses and plans each time
(about a sixth of a PostgreSQL worker's CPU, with the planning on top on the server). SQLite, in process, gains
nothing from it and keeps SQLAlchemy's statements.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, JSON, Row, Table, Text, bindparam, cast, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["among", "among_params", "arrays", "insert_all", "insert_new", "selected", "unnested", "update_all"]


async def insert_all(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` with one statement; their ids, in the rows' order."""
    if not rows:
        return []
    if session.bind.dialect.name == "sqlite":
        # SQLite numbers each new row one past the largest id so far, row after row in the statement's order, but
        # returns them in no set order; SQLAlchemy, which cannot assume the numbering, would insert one row a
        # statement to keep the order. Sorted, the ids are in the rows' order.
        return sorted((await session.exec(_insert(table), params=rows)).scalars())
    # The rows leave unnest in their order (ORDER BY its ordinality) and take their ids from the sequence in the
    # order they arrive, so the ids sorted are the rows' ids in order: how SQLAlchemy orders RETURNING too.
    connection = await session.connection()
    statement = _unnest(table, tuple(rows[0]), conflict=None, returning=("id",))
    return sorted((await connection.execute(statement, arrays(connection, table, rows))).scalars())


async def insert_new(connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *,
                     conflict: tuple[str, ...], returning: tuple[str, ...] = ()) -> Sequence[Row[Any]]:
    """Insert the ``rows`` whose ``conflict`` columns match no stored row (nor an earlier row of ``rows``), with
    one statement; ``returning`` of each row inserted, in no set order."""
    if not rows:
        return []
    if connection.dialect.name == "sqlite":
        result = await connection.execute(_insert_sqlite(table, conflict, returning), list(rows))
    else:
        statement = _unnest(table, tuple(rows[0]), conflict=conflict, returning=returning)
        result = await connection.execute(statement, arrays(connection, table, rows))
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
        await connection.execute(_update_unnest(table, columns, key), arrays(connection, table, rows))


def among(table: Table, columns: tuple[str, ...], dialect: str) -> Any:
    """``(columns) IN (...)`` the rows bound by :func:`among_params`, for a statement on ``dialect``."""
    target = tuple_(*(table.c[name] for name in columns)) if len(columns) > 1 else table.c[columns[0]]
    if dialect == "postgresql":
        batch = unnested(table, columns)
        return target.in_(select(*(selected(table, batch, name) for name in columns)))
    return target.in_(bindparam("among", expanding=True))


def among_params(connection: Any, table: Table, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of :func:`among` for ``rows`` (each a value of each of its columns)."""
    if connection.dialect.name == "postgresql":
        return arrays(connection, table, rows)
    names = list(rows[0])
    return {"among": [tuple(row[name] for name in names) if len(names) > 1 else row[names[0]] for row in rows]}


@functools.cache
def _update_sqlite(table: Table, columns: tuple[str, ...], key: str) -> Any:
    # Parameters are renamed: SQLAlchemy keeps a column's own name for the value a statement sets it to.
    return (update(table).where(table.c[key] == bindparam(f"new_{key}"))
            .values({name: bindparam(f"new_{name}") for name in columns if name != key}))


@functools.cache
def _update_unnest(table: Table, columns: tuple[str, ...], key: str) -> Any:
    batch = unnested(table, columns)
    return (update(table).where(table.c[key] == batch.c[key])
            .values({name: selected(table, batch, name) for name in columns if name != key}))


@functools.cache
def _insert(table: Table) -> Any:
    # Built once per table: building a statement per batch costs about as much as running it.
    return insert(table).returning(table.c.id, sort_by_parameter_order=False)


@functools.cache
def _insert_sqlite(table: Table, conflict: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement


def unnested(table: Table, columns: tuple[str, ...]) -> Any:
    """``unnest(:column, ...) WITH ORDINALITY AS batch(column, ..., ordinality)``: PostgreSQL rows given as one
    array a column (see :func:`arrays`), numbered from 1 by ``ordinality``."""
    bound = (bindparam(_array(name), type_=ARRAY(Text if _is_json(table, name) else table.c[name].type))
             for name in columns)
    return func.unnest(*bound).table_valued(*columns, with_ordinality="ordinality").render_derived("batch")


def arrays(connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as one list a column, for :func:`unnested`. A JSON value goes as its text: an array of JSON
    would read a JSON list as a dimension of the array."""
    serialize = connection.dialect._json_serializer  # type: ignore[attr-defined]
    columns: dict[str, list[Any]] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if _is_json(table, name):
            keep_none = not table.c[name].type.none_as_null
            values = [serialize(v) if v is not None or keep_none else None for v in values]
        columns[_array(name)] = values
    return columns


def _array(name: str) -> str:
    # Not the column's own name: SQLAlchemy keeps that for the value an UPDATE sets the column to.
    return f"{name}_array"


def selected(table: Table, batch: Any, name: str) -> Any:
    """Column ``name`` of :func:`unnested` rows, as the table's column takes it."""
    return cast(batch.c[name], table.c[name].type) if _is_json(table, name) else batch.c[name]


def _is_json(table: Table, name: str) -> bool:
    return isinstance(table.c[name].type, JSON)


@functools.cache
def _unnest(table: Table, columns: tuple[str, ...], *, conflict: tuple[str, ...] | None,
            returning: tuple[str, ...]) -> Any:
    """``INSERT INTO table (columns) SELECT ... FROM unnest(...)``, the rows in their order."""
    batch = unnested(table, columns)
    statement = postgresql.insert(table).from_select(
        columns, select(*(selected(table, batch, name) for name in columns)).order_by(batch.c.ordinality))
    if conflict is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement
