"""Hypothesis strategies for hostile requests, and the promise each must keep (needs ``hypothesis``).

A provider plugin's tests can throw these at its webhook the way the bundled plugins' tests do::

    from smsconnector.testing.hostile import assert_kept_its_promise, json_bodies

    @given(raw=json_bodies(VALID_EVENT))
    def test_hostile_events(raw):
        before = db.contents()
        response = post(raw)
        assert_kept_its_promise(response.status_code, before, db)

Each strategy starts from a valid body and breaks it: a field set to something hostile (NUL, a lone
surrogate where the transport can carry one, digits ``int()`` cannot read, numbers past any column, ``1e999``,
very long strings, the wrong type), a field dropped or added, or the whole body replaced (deep nesting, not
UTF-8, not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, quote_from_bytes

from hypothesis import strategies as st

from .database import Database

#: strings chosen to break parsers and columns
NASTY_STRINGS = ("", " ", "\x00", "a\x00b", "\x00" * 40, "²", "٣", "-1", "0", "9" * 20, "9" * 5000, "1e999", "NaN",
                 "Infinity", "x" * 101, "x" * 201, "SM" + "a" * 3000, "%00", "+", "\ufffd", "\u202e", "😀" * 40,
                 "whatsapp:+14155550123", "+1415555012\x003", "true", "null", "[]", "{}")
#: numbers past every column, and floats that are not numbers to an integer column
NASTY_NUMBERS = (2**31, 2**63, 10**20, -(10**20), 1e999, -1e999, float("nan"), 2.5, -1, 0, 256, 65536)
#: whole bodies that are not what any endpoint takes
NASTY_BODIES = (b"", b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b"\xff\xfe", b"{",
                b"null", b"1e999", b'"\\ud800"', b'{"\\u0000": 1}', b"9" * 5000)


def texts(*, surrogates: bool) -> st.SearchStrategy[str]:
    """Strings: the nasty ones, random text with NUL (and lone surrogates if ``surrogates``), long ones."""
    alphabet = st.characters(codec=None, exclude_categories=() if surrogates else ("Cs",))
    return st.one_of(st.sampled_from(NASTY_STRINGS), st.text(alphabet, max_size=30),
                     st.text(alphabet, min_size=100, max_size=300))


def json_values(*, depth: int = 2) -> st.SearchStrategy[Any]:
    """JSON values of any type, with hostile strings (lone surrogates included) and numbers."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(NASTY_NUMBERS),
                        st.floats(), texts(surrogates=True))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                        st.dictionaries(texts(surrogates=True), inner, max_size=3), max_leaves=6) if depth else scalars


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, the value itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _changed(value: Any, path: tuple[Any, ...], change: tuple[Any, ...]) -> Any:
    if not path:
        if change[0] == "set":
            return change[1]
        if change[0] == "add" and isinstance(value, dict):
            return {**value, change[1]: change[2]}
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if not rest and change[0] == "drop":
        del copy[head]
    else:
        copy[head] = _changed(value[head], rest, change)
    return copy


def json_bodies(valid: Any) -> st.SearchStrategy[bytes]:
    """``valid`` (a JSON value) broken one to three ways, or a body nothing takes; UTF-8 JSON with escapes, so
    lone surrogates and NUL travel as ``\\ud800`` and ``\\u0000``."""
    paths = _paths(valid)
    change = st.one_of(
        st.tuples(st.sampled_from(paths), st.tuples(st.just("set"), json_values())),
        st.tuples(st.sampled_from(paths[1:] or paths), st.tuples(st.just("drop"))),
        st.tuples(st.sampled_from(paths), st.tuples(st.just("add"), texts(surrogates=True), json_values(depth=0))),
    )

    def broken(changes: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> bytes:
        body = valid
        for path, what in changes:
            try:
                body = _changed(body, path, what)
            except (KeyError, IndexError, TypeError):  # an earlier change removed or replaced that place
                continue
        return json.dumps(body).encode()

    return st.one_of(st.lists(change, min_size=1, max_size=3).map(broken), st.sampled_from(NASTY_BODIES),
                     json_values().map(lambda v: json.dumps(v).encode()))


def form_bodies(valid: Sequence[tuple[str, str]], *,
                read: Sequence[str] = ()) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Form fields (name, percent-encoded value) of ``valid`` broken one to three ways: a value replaced by hostile
    text or by arbitrary bytes (not UTF-8, say), a field dropped, added or repeated with another value. ``read``:
    the fields the normalizer reads, broken half of the time (a form has many it ignores)."""
    encoded = st.one_of(texts(surrogates=False).map(lambda t: quote(t, safe="")),
                        st.binary(max_size=40).map(lambda b: quote_from_bytes(b, safe="")))
    every = sorted({name for name, _ in valid} | set(read))
    names = st.one_of(st.sampled_from(every), st.sampled_from(sorted(read))) if read else st.sampled_from(every)
    change = st.one_of(
        st.tuples(st.just("set"), names, encoded),
        st.tuples(st.just("drop"), names, st.just("")),
        st.tuples(st.just("add"), texts(surrogates=False).map(lambda t: quote(t, safe="")), encoded),
        st.tuples(st.just("repeat"), names, encoded),
    )

    def broken(changes: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
        fields = [(name, quote(value, safe="")) for name, value in valid]
        for kind, name, value in changes:
            if kind == "set" and any(n == name for n, _ in fields):
                fields = [(n, value if n == name else v) for n, v in fields]
            elif kind == "drop":
                fields = [(n, v) for n, v in fields if n != name]
            else:  # added, repeated, or set where the valid form has no such field
                fields.append((name, value))
        return fields

    return st.lists(change, min_size=1, max_size=3).map(broken)


def assert_kept_its_promise(status: int, before: dict[str, Any], db: Database, *extra_tables: str) -> None:
    """The promise to hostile input: answered 2xx or 4xx, never 5xx; a refusal (4xx) changed nothing in the
    database (``before`` is ``db.contents(*extra_tables)`` from before the request); an accepted webhook left
    nothing in the inbox that failed or waits to be routed."""
    assert status < 500, f"answered {status}"
    if status >= 400:
        assert db.contents(*extra_tables) == before, f"refused with {status} but the database changed"
    assert db.count("inbox", "processed_at IS NULL OR error IS NOT NULL") == 0, \
        db.rows("SELECT key, error FROM inbox WHERE processed_at IS NULL OR error IS NOT NULL")
