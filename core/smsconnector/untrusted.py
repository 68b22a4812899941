"""Input from outside: what the host mends or refuses before anything of it is stored, the same on both databases.

PostgreSQL cannot keep U+0000 (NUL) in a text column, nor read it out of a JSON string as text, and no driver
can encode a lone surrogate (half of a UTF-16 pair) as UTF-8. Integers must fit their columns. So:

- **A consumer's message is kept, never refused for its text.** In every string stored with it (text,
  details, media) NUL and lone surrogates become U+FFFD, the replacement character: an SMS cannot carry a
  meaningful NUL, and refusing the message would lose it (:func:`storable`, which the host applies to every
  provider's events before they reach the inbox).
- **Identifiers and counts are refused** (400) when they hold such characters, are longer than their column,
  or are beyond what SMS allows (255 parts of a concatenated message).
- **A JSON body is refused** (400) when it nests deeper than :data:`MAX_DEPTH` or holds a lone surrogate; an
  API body (a client's, not a provider's) also when it holds NUL or a number no column holds: beyond 64 bits,
  or not finite (``1e999``); a provider's numbers are its normalizer's to read and bound. :func:`loads`
  parses both; plugins' endpoints get it through :func:`smsconnector.endpoints.json_model`.

A refusal's reason names the field and the problem, never the value: reasons are logged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import Malformed
from .messages import InboundMessage, Media, SegmentInfo, StatusUpdate
from .reassembly import MAX_PARTS
from .store.models import Message, SegmentGroup

#: deepest nesting of arrays and objects a JSON body may have (the API's bodies need four)
MAX_DEPTH = 32
#: the longest provider message id (the ``messages`` column, and the inbox key built from it)
PROVIDER_ID_LENGTH: int = Message.__table__.c.provider_message_id.type.length  # type: ignore[attr-defined]
#: the longest error code a status report may carry (its column)
ERROR_CODE_LENGTH: int = Message.__table__.c.error_code.type.length  # type: ignore[attr-defined]
#: the longest number or sender id (the columns; E.164 has at most 16 characters)
NUMBER_LENGTH: int = SegmentGroup.__table__.c.from_number.type.length  # type: ignore[attr-defined]
#: a provider keyword (Twilio's OptOutType: STOP, START, HELP) is a word, not a text
KEYWORD_LENGTH = 50
#: a concatenated SMS's reference number has at most 16 bits
MAX_REFERENCE = 0xFFFF
_INT64 = range(-(2**63), 2**63)
#: what no database stores as text: NUL and the halves of surrogate pairs
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: a number of seven digits or more, with the separators people write them with
_NUMBER_LIKE = re.compile(r"\+?\d[\d ().-]{5,}\d")


def mended(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, so that both databases store it."""
    return text if _storable(text) else _UNSTORABLE.sub("\ufffd", text)


def _storable(text: str) -> bool:
    # ASCII first: it is what nearly every id, number and text is, and a search costs ten times as much.
    return "\x00" not in text if text.isascii() else _UNSTORABLE.search(text) is None


def identifier(value: Any, name: str, *, max_length: int) -> str:
    """``value`` if it is a string of 1 to ``max_length`` characters that both databases store; else
    :class:`Malformed`."""
    if not isinstance(value, str) or not value:
        raise Malformed(f"{name} is missing or not a string")
    if len(value) > max_length:
        raise Malformed(f"{name} is longer than {max_length} characters")
    if not _storable(value):
        raise Malformed(f"{name} holds U+0000 or a lone surrogate")
    return value


def _count(value: Any, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Malformed(f"{name} must be a whole number from {low} to {high}")


def _segment(segment: SegmentInfo | None, what: str) -> None:
    """Refuse a part whose numbers are not whole, or beyond what SMS allows (and so beyond any column)."""
    if segment is None:
        return
    reference, total, sequence = segment.reference, segment.total, segment.sequence
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (reference, total, sequence)):
        raise Malformed(f"{what}: the reference, total and sequence must be whole numbers")
    if not (0 <= reference <= MAX_REFERENCE and 1 <= total <= MAX_PARTS and 1 <= sequence <= total):
        raise Malformed(f"{what} {sequence} of {total} (reference {reference}): the sequence must be between 1 "
                        f"and the total, the total between 1 and {MAX_PARTS}, the reference between 0 and "
                        f"{MAX_REFERENCE}")
    if segment.payload is not None and not isinstance(segment.payload, bytes):
        raise Malformed(f"{what}: the payload is not bytes")
    if segment.encoding is not None:
        identifier(segment.encoding, f"{what}: the encoding", max_length=20)


def storable(item: InboundMessage | StatusUpdate) -> InboundMessage | StatusUpdate:
    """A provider's event as the store can keep it, on SQLite and PostgreSQL alike (see the module docstring).

    A normalizer may call it too, to refuse early; the host calls it for every provider's events.

    :raises Malformed: an identifier or a count that no column holds, or that SMS does not allow.
    """
    identifier(item.provider_message_id, "the provider message id", max_length=PROVIDER_ID_LENGTH)
    if isinstance(item, StatusUpdate):
        if item.error_code is not None:
            identifier(item.error_code, "the error code", max_length=ERROR_CODE_LENGTH)
        _segment(item.segment, "receipt for part")
        if item.error_message is None or _fine(item.error_message):
            return item
        return dataclasses.replace(item, error_message=_mended(item.error_message, "the error message"))
    identifier(item.from_number, "the sender", max_length=NUMBER_LENGTH)
    identifier(item.to_number, "the recipient", max_length=NUMBER_LENGTH)
    if item.provider_keyword is not None:
        identifier(item.provider_keyword, "the provider keyword", max_length=KEYWORD_LENGTH)
    if item.num_segments is not None:
        _count(item.num_segments, "the segment count", 0, MAX_PARTS)
    _segment(item.segment, "segment")
    if not isinstance(item.details, Mapping):
        raise Malformed("the details are not a mapping")
    if _fine(item.text, *item.details, *item.details.values(),
             *(part for m in item.media for part in (m.url, m.content_type or ""))):
        return item  # what nearly every webhook is: nothing to mend, nothing copied
    return dataclasses.replace(
        item, text=_mended(item.text, "the text"),
        media=tuple(Media(_mended(m.url, "a media URL"),
                          None if m.content_type is None else _mended(m.content_type, "a media content type"))
                    for m in item.media),
        details={_mended(k, "a detail's name"): _mended(v, "a detail") for k, v in item.details.items()})


def _fine(*strings: Any) -> bool:
    """Whether these are all strings that both databases store as they are (one search over all of them)."""
    try:
        return _storable("".join(strings))
    except TypeError:  # something is not a string: :func:`_mended` names it
        return False


def _mended(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{name} is not a string")
    return mended(value)


def loads(raw: bytes, *, strict: bool) -> Any:
    """``raw`` parsed as JSON, or :class:`Malformed` (400) naming what is wrong.

    Always refused: a body that is not UTF-8 JSON, nests deeper than :data:`MAX_DEPTH`, or holds a lone
    surrogate (``"\\ud800"``). With ``strict`` (a client's body, not a provider's) also NUL in any string and
    numbers no column holds (integers beyond 64 bits, ``1e999``, ``NaN``).
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise Malformed(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Malformed(f"body is not JSON: {exc}") from None
    # A provider's body is walked only when it could fail: without an escape JSON text holds no NUL and no
    # surrogate, and with few brackets it cannot nest deep (a webhook is on the hot path; a client's body is not).
    if strict or b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check(data, strict=strict)
    return data


def _check(data: Any, *, strict: bool) -> None:
    """Walk ``data`` (without recursion: its depth is what is checked) for what :func:`loads` refuses."""
    stack: list[tuple[Any, str, int]] = [(data, "body", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value, where, strict=strict)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise Malformed(f"the JSON nests deeper than {MAX_DEPTH} levels")
            for key, inner in value.items() if isinstance(value, dict) else enumerate(value):
                if isinstance(key, str):
                    _check_string(key, f"{where}: a name", strict=strict)
                # Only a top-level field is named: a deeper name is the sender's data, and reasons are logged.
                named = depth == 0 and isinstance(key, str) and key.isidentifier() and len(key) <= 30
                stack.append((inner, f"{where}.{key}" if named else where, depth + 1))
        elif strict and isinstance(value, float) and not math.isfinite(value):
            raise Malformed(f"{where}: a number no column holds (beyond 64 bits, or not finite)")
        elif strict and isinstance(value, int) and value not in _INT64:
            raise Malformed(f"{where}: an integer beyond 64 bits")


def refuse_unstorable(value: str, where: str) -> None:
    """:class:`Malformed` naming ``where`` when ``value`` holds NUL or a lone surrogate (a client's text)."""
    _check_string(value, where, strict=True)


def _check_string(value: str, where: str, *, strict: bool) -> None:
    if not _UNSTORABLE.search(value):
        return
    if _SURROGATE.search(value):
        raise Malformed(f"{where}: a lone surrogate (half of a UTF-16 pair) is not text")
    if strict:
        raise Malformed(f"{where}: U+0000 (NUL) is not allowed in text")


def loggable(reason: str) -> str:
    """A refusal's reason fit for a log line: anything shaped like a phone number (seven digits or more) masked.

    Reasons name the field and the problem, never a message's text; some echo a number that was sent
    (``'+1415...' is not a phone number``), which helps the sender but must not reach the logs.
    """
    return _NUMBER_LIKE.sub(lambda m: "…" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), reason)
