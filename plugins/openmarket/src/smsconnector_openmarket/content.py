"""Reading an MO's content: hexadecimal, the UDH in front of it, and the codec of the bytes after it.

OpenMarket forwards a part of a long message as ``hexEncodedText`` with the user data header first. Its
documentation shows no field naming the part's coding, so the codec comes from, in order: a ``charset``,
``dataCoding`` or ``dcs`` field on the message if one is there; the deployment's ``inbound_charset``; else
:func:`guess_codec`. GSM 03.38 has no Python codec, so this module registers one, ``gsm0338``, for the
host to join and decode parts with.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsconnector.plugin import Malformed, SegmentInfo
from smsconnector.segments import UdhError, decode_gsm, encode_gsm, parse_udh

GSM_CODEC = "gsm0338"
_ESC = 0x1B


def _gsm_decode(data: bytes | bytearray | memoryview, errors: str = "strict") -> tuple[str, int]:
    raw = bytes(data)
    try:
        return decode_gsm(raw), len(raw)
    except ValueError as exc:
        if errors == "strict":
            raise UnicodeDecodeError(GSM_CODEC, raw, 0, len(raw), str(exc)) from None
    # Lenient: septets decode, anything else (a byte above 0x7F, a trailing escape) becomes U+FFFD or nothing.
    bad = "\ufffd" if errors == "replace" else ""
    chars, start, index = [], 0, 0
    while index < len(raw):
        code = raw[index]
        pair = code == _ESC and index + 1 < len(raw) and raw[index + 1] <= 0x7F
        if code <= 0x7F and (code != _ESC or pair):
            index += 2 if pair else 1
            continue
        chars += [decode_gsm(raw[start:index]), bad]
        index += 1
        start = index
    chars.append(decode_gsm(raw[start:]))
    return "".join(chars), len(raw)


def _gsm_encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
    try:
        return encode_gsm(text), len(text)
    except ValueError as exc:
        raise UnicodeEncodeError(GSM_CODEC, text, 0, len(text), str(exc)) from None


def _search(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "").replace("-", "") != GSM_CODEC:
        return None
    return codecs.CodecInfo(name=GSM_CODEC, encode=_gsm_encode, decode=_gsm_decode)  # type: ignore[arg-type]


codecs.register(_search)

# What a message may say about its coding: MT charset names, SMPP data_coding values, v3 datacoding words.
_NAMED = {
    "gsm": GSM_CODEC, "gsm7": GSM_CODEC, "gsm0338": GSM_CODEC, "7bit": GSM_CODEC, "default": GSM_CODEC,
    "ascii": "ascii", "ia5": "ascii",
    "latin1": "latin-1", "iso88591": "latin-1", "8bit": "latin-1",
    "utf8": "utf-8",
    "utf16": "utf-16-be", "utf16be": "utf-16-be", "ucs2": "utf-16-be", "16bit": "utf-16-be", "unicode": "utf-16-be",
}
_DATA_CODING = {0: GSM_CODEC, 1: "ascii", 2: "latin-1", 3: "latin-1", 4: "latin-1", 8: "utf-16-be"}
#: The ``inbound_charset`` setting's values and their codecs (``auto`` guesses).
CHARSETS = {"gsm": GSM_CODEC, "latin-1": "latin-1", "utf-8": "utf-8", "utf-16": "utf-16-be"}


def declared_codec(message: Mapping[str, Any]) -> str | None:
    """The codec a message names for its bytes, if it names one."""
    for key in ("charset", "dataCoding", "dcs"):
        value = message.get(key)
        if value is None or value == "":
            continue
        if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit()):
            codec = _DATA_CODING.get(int(value))
        else:
            codec = _NAMED.get(str(value).lower().replace("-", "").replace("_", "").replace(" ", ""))
        if codec is None:
            raise Malformed(f"message.{key}: unknown coding {value!r}")
        return codec
    return None


_TEXT_CONTROLS = frozenset("\t\n\r")


def _reads_as_text(text: str, *, edges: bool = False) -> bool:
    """No control, private-use or unassigned characters; with ``edges``, half a surrogate pair only at an end."""
    last = len(text) - 1
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cs":
            high = "\ud800" <= char <= "\udbff"
            if not (edges and ((high and index == last) or (not high and index == 0))):
                return False
        elif category in ("Co", "Cn") or (category == "Cc" and char not in _TEXT_CONTROLS):
            return False
    return True


def guess_codec(payload: bytes, *, seven_bit: str = "gsm") -> str:
    """The likeliest codec of a part's bytes, when nothing says which (the heuristic the README documents).

    1. UTF-8 when the bytes are valid UTF-8 with at least one multi-byte character and no control character.
    2. UTF-16-BE (UCS-2) when there are at least two code units that read as text (half a surrogate pair is
       allowed at either end: senders split pairs between parts), and either some byte is above 0x7F or
       every code unit starts with 0x00, 0x20 or one same byte below 0x20 other than 0x1B (ASCII in UCS-2
       is ``00 xx``, curly quotes ``20 1C``; Cyrillic adds ``04 xx``, Arabic ``06 xx``...; GSM text rarely
       has such septets at every other position).
    3. When every byte is at most 0x7F: GSM 03.38 septets, one per byte; or, with ``seven_bit="ascii"``,
       ASCII unless a byte below 0x20 other than tab, CR and LF shows septets (GSM's ``@``, ``£``, ``é``...).
    4. Latin-1 otherwise: it reads any byte.
    """
    if any(b > 0x7F for b in payload):
        try:
            if _reads_as_text(payload.decode("utf-8")):
                return "utf-8"
        except UnicodeDecodeError:
            pass
    if len(payload) >= 4 and len(payload) % 2 == 0:
        blocks = set(payload[0::2]) - {0x00, 0x20}
        # Every character from Latin-1, General Punctuation (curly quotes, dashes: 20xx) and at most one other
        # block below U+2000 (Cyrillic 04xx, Arabic 06xx...), but not 1Bxx: 0x1B is GSM's escape, which a
        # text full of brackets or euros repeats.
        one_script = len(blocks) <= 1 and all(b < 0x20 and b != 0x1B for b in blocks)
        if any(b > 0x7F for b in payload) or one_script:
            if _reads_as_text(payload.decode("utf-16-be", errors="surrogatepass"), edges=True):
                return "utf-16-be"
    if all(b <= 0x7F for b in payload):
        if seven_bit == "ascii" and all(b >= 0x20 or chr(b) in _TEXT_CONTROLS for b in payload):
            return "ascii"
        return GSM_CODEC
    return "latin-1"


@dataclass(frozen=True, slots=True)
class Content:
    """An MO's text, and its concatenation details when it is a part of a longer message."""

    text: str
    segment: SegmentInfo | None = None
    codec: str | None = None


def read_content(message: Mapping[str, Any], *, charset: str = "auto", seven_bit: str = "gsm") -> Content:
    """Decode ``message`` (an MO's ``message`` object) into text and, for a part, its :class:`SegmentInfo`.

    :param charset: the deployment's ``inbound_charset``: ``auto`` or a key of :data:`CHARSETS`.
    :param seven_bit: the deployment's ``inbound_7bit``: how ``auto`` reads bytes that are all 7-bit.
    :raises Malformed: the content is not hexadecimal, the UDH is broken, or the part numbers are impossible.
    """
    kind = message.get("type", "text")
    content = message.get("content")
    if not isinstance(content, str):
        raise Malformed("message.content must be a string")
    if kind == "text":
        return Content(content)
    if kind not in ("hexEncodedText", "binary"):
        raise Malformed(f"message.type {kind!r} is not text, hexEncodedText or binary")
    try:
        data = bytes.fromhex(content)
    except ValueError:
        raise Malformed(f"message.content of a {kind} message is not hexadecimal") from None
    concat = None
    if _has_udh(message.get("udh"), data):
        try:
            concat, data = parse_udh(data)
        except UdhError as exc:
            raise Malformed(f"message.content: user data header: {exc}") from None
    codec = declared_codec(message) or (CHARSETS[charset] if charset != "auto" else
                                        guess_codec(data, seven_bit=seven_bit))
    text = data.decode(codec, errors="replace")
    if concat is None or concat.total == 1:
        return Content(text, codec=codec)
    return Content(text, SegmentInfo(concat.reference, concat.total, concat.sequence, payload=data, encoding=codec),
                   codec)


def _has_udh(flag: Any, data: bytes) -> bool:
    if flag is not None:
        return flag is True or str(flag).lower() == "true"
    # No flag: a concatenation header (05 00 03 or 06 08 04) in front is taken as one; text never starts so.
    return data[:3] in (b"\x05\x00\x03", b"\x06\x08\x04")
