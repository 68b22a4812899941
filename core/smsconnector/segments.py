"""SMS segmentation: GSM 03.38 / UCS-2 detection, segment counting, smart encoding and concatenation UDHs.

An SMS carries 140 octets of user data. Text that fits the GSM 03.38 default alphabet (3GPP TS 23.038) is sent as
7-bit septets: 160 per single message, 153 per part of a concatenated one, where the 6-octet user data header
(3GPP TS 23.040 9.2.3.24.1) takes the rest. Extension-table characters cost two septets (ESC + code). A single
character outside the alphabet switches the whole text to UCS-2: 70 UTF-16 code units single, 67 per part.

Parts are filled greedily and cut where Twilio's segment calculator cuts them, so that counts, previews and
per-segment throttling agree with what Twilio bills. GSM-7 text is cut between characters, never inside an ESC
pair. UCS-2 text is cut between extended grapheme clusters (Unicode's current rules, UAX #29, from the ``regex``
module): a flag, a ZWJ emoji sequence or a letter with its combining marks that does not fit what is left of a
part opens the next part whole. Only a cluster longer than a whole part (67 units; say, a letter under dozens of
combining marks) is cut: it opens the next part and is divided between code points, never inside a surrogate
pair. CR LF is the one cluster always treated as two characters, as the calculator does; GSM-7 text has no other
cluster of more than one character (combining marks and the like are outside the alphabet).

Where this and the calculator differ, the count here is the same or higher: the calculator follows older
Unicode rules and so divides an Indic conjunct (one cluster since Unicode 15.1) that a part here leaves whole for
the next, and it leaves a cluster longer than a part in one part too long to send.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import accumulate
from typing import Literal

import regex

__all__ = [
    "GSM_BASIC",
    "GSM_EXTENSION",
    "Concatenation",
    "SegmentedText",
    "UdhError",
    "build_udh",
    "decode_gsm",
    "encode_gsm",
    "is_gsm",
    "non_gsm_characters",
    "parse_udh",
    "segment",
    "smart_encode",
    "split_for_concatenation",
]

_ESC = 0x1B

# The basic table in septet order, 0x00 to 0x7F; position 0x1B is the escape to the extension table.
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_BASIC_CODES: dict[str, int] = {char: code for code, char in enumerate(_BASIC_TABLE) if code != _ESC}
_EXTENSION_CODES: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_EXTENSION_CHARS: dict[int, str] = {code: char for char, code in _EXTENSION_CODES.items()}

GSM_BASIC: frozenset[str] = frozenset(_BASIC_CODES)
GSM_EXTENSION: frozenset[str] = frozenset(_EXTENSION_CODES)
_GSM = GSM_BASIC | GSM_EXTENSION

_USER_DATA_OCTETS = 140
_UDH_8BIT_OCTETS = 6

# Extended grapheme clusters, except that CR and LF stay two characters: Twilio counts them so, and a line break
# whose CR and LF fall in two parts still shows as one once the handset joins them.
_CLUSTERS = regex.compile(r"\r|\X")


def _gsm_units(char: str) -> int:
    return 2 if char in GSM_EXTENSION else 1


def _ucs2_units(text: str) -> int:
    """UTF-16 code units of ``text`` (a lone surrogate counts one, as it is sent)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _capacity(gsm: bool, udh_octets: int) -> int:
    """Units of text that fit in one message beside a UDH of ``udh_octets`` octets."""
    if gsm:
        # The septet stream starts on a septet boundary after the UDH (fill bits), so the UDH costs whole septets.
        udh_septets = (udh_octets * 8 + 6) // 7
        return _USER_DATA_OCTETS * 8 // 7 - udh_septets
    return (_USER_DATA_OCTETS - udh_octets) // 2


def _pack(text: str, units: Callable[[str], int], capacity: int) -> tuple[str, ...]:
    """Greedily cut ``text`` into pieces of at most ``capacity`` units; a character is never divided."""
    pieces: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        cost = units(char)
        if used + cost > capacity:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    if text:
        pieces.append(text[start:])
    return tuple(pieces)


def _units_between(text: str, start: int, end: int) -> int:
    """UTF-16 code units of ``text[start:end]``: the key to bisect on for where a part ends."""
    return _ucs2_units(text[start:end])


def _split_ucs2(text: str, capacity: int) -> list[str]:
    """Greedily cut UCS-2 ``text`` into parts of at most ``capacity`` code units, between grapheme clusters; a
    cluster longer than a whole part opens one and is cut between code points."""
    ends = list(accumulate(map(len, _CLUSTERS.findall(text))))  # the code point after each cluster
    parts: list[str] = []
    start = first = 0  # where the part starts, and the first cluster that ends after that
    while start < len(text):
        units = partial(_units_between, text, start)
        # A code point is at least one code unit, so no cluster ending past start + capacity can fit.
        last = bisect_right(ends, capacity, first, bisect_right(ends, start + capacity, first), key=units)
        if last > first:
            end, first = ends[last - 1], last
        else:  # the cluster at start is longer than a whole part: the last resort is to cut between code points
            end = bisect_right(range(start + capacity + 1), capacity, start + 1, key=units) - 1
        parts.append(text[start:end])
        start = end
    return parts


def _split(text: str, gsm: bool, capacity: int) -> tuple[str, ...]:
    """Cut ``text`` into parts of ``capacity`` units: GSM-7 between characters, UCS-2 between grapheme clusters."""
    return _pack(text, _gsm_units, capacity) if gsm else tuple(_split_ucs2(text, capacity))


@dataclass(frozen=True)
class SegmentedText:
    """How a text is split into SMS segments. An empty text has no segments (``count == 0``)."""

    encoding: Literal["GSM-7", "UCS-2"]
    segments: tuple[str, ...]
    non_gsm_characters: tuple[str, ...]
    units: int
    text: str

    @property
    def count(self) -> int:
        """Number of segments (billable messages)."""
        return len(self.segments)


def is_gsm(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return _GSM.issuperset(text)


def non_gsm_characters(text: str) -> tuple[str, ...]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    return tuple(dict.fromkeys(char for char in text if char not in _GSM))


def segment(text: str, *, smart_encoding: bool = False) -> SegmentedText:
    """Split ``text`` into SMS segments the way the network bills it."""
    if smart_encoding:
        # Twilio documents that it does not transliterate a message that stays Unicode (emoji, CJK...) anyway.
        encoded = smart_encode(text)
        if is_gsm(encoded):
            text = encoded
    gsm = is_gsm(text)
    # An extension character costs a second septet in GSM-7; in UCS-2 every character costs its UTF-16 code units.
    total = len(text) + sum(map(text.count, GSM_EXTENSION)) if gsm else _ucs2_units(text)
    single = _capacity(gsm, 0)
    if total <= single:
        segments: tuple[str, ...] = (text,) if text else ()
    else:
        segments = _split(text, gsm, _capacity(gsm, _UDH_8BIT_OCTETS))
    return SegmentedText(
        encoding="GSM-7" if gsm else "UCS-2",
        segments=segments,
        non_gsm_characters=() if gsm else non_gsm_characters(text),
        units=total,
        text=text,
    )


# Twilio's Smart Encoding list ("List of characters replaced by Smart Encoding", 270 characters): look-alikes and
# the GSM text that replaces them. Where the page does not show what a space-like character becomes, this follows
# Twilio's segment calculator, which mirrors the page's rows: two spaces for most, one for U+2001, U+2028 and
# U+2029, seven for the tab. The page has the angle quotes U+2039 and U+203A swapped (to ">" and "<"); this keeps
# each its own look-alike, at the same cost.
_LOOK_ALIKES: tuple[tuple[str, str], ...] = (
    ('"', "\u00ab\u00bb\u201c\u201d\u201e\u201f\u02ba\u02ee\u275d\u275e\u301d\u301e\uff02"),
    (
        "'",
        "\u2018\u2019\u201b\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb\u00b4\u0060\u275b\u275c\u0313\u0314"
        "\ufe10\ufe11\uff07",
    ),
    ("/", "\u00f7\u29f8\u0337\u0338\u2044\u2215\uff0f"),
    ("\\", "\u29f9\u29f5\u20e5\ufe68\uff3c"),
    ("_", "\u0332\uff3f\u2017"),
    ("|", "\u20d2\u20d3\u2223\uff5c\u23b8\u23b9\u23d0\u239c\u239f"),
    ("-", "\u2010\u2013\u2014\u2015\u2022\u2043\u23bc\u23bd\ufe63\uff0d"),
    ("@", "\ufe6b\uff20"),
    ("$", "\ufe69\uff04"),
    ("!", "\u01c3\ufe15\ufe57\uff01"),
    ("#", "\ufe5f\uff03"),
    ("%", "\ufe6a\uff05"),
    ("&", "\ufe60\uff06"),
    (",", "\u201a\u0326\u3001\ufe50\ufe51\uff0c\uff64"),
    ("(", "\u2768\u276a\u27ee\u2985\ufe59\uff08"),
    (")", "\u2769\u276b\u27ef\u2986\ufe5a\uff09"),
    (
        "*",
        "\u204e\u2217\u229b\u2722\u2723\u2724\u2725\u2731\u2732\u2733\u273a\u273b\u273c\u273d"
        "\u2743\u2749\u274a\u274b\u29c6\ufe61\uff0a",
    ),
    ("+", "\u02d6\ufe62\uff0b"),
    (".", "\u3002\ufe52\uff0e\uff61"),
    (":", "\u02d0\u02f8\u2982\ua789\ufe13\uff1a"),
    (";", "\u204f\ufe14\ufe54\uff1b"),
    ("<", "\u2039\ufe64\uff1c"),
    ("=", "\u0347\ua78a\ufe66\uff1d"),
    (">", "\u203a\ufe65\uff1e"),
    ("?", "\ufe16\ufe56\uff1f"),
    ("^", "\u02c6\u0302\u1dcd\uff3e"),
    ("{", "\u2774\ufe5b\uff5b"),
    ("}", "\u2775\ufe5c\uff5d"),
    ("[", "\uff3b"),
    ("]", "\uff3d"),
    ("~", "\u02dc\u02f7\u0303\u0330\u0334\u223c\uff5e"),
    ("1/4", "\u00bc"),
    ("1/2", "\u00bd"),
    ("3/4", "\u00be"),
    ("!!", "\u203c"),
    ("...", "\u2026"),
    # Odd spaces and C1 controls that display as a space; line and paragraph separators.
    (
        "  ",
        "\u00a0\u2000\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
        "\u0080\u008d\u0090\u009b\u009f",
    ),
    (" ", "\u2001\u2028\u2029"),
    ("       ", "\t"),
    # Invisible characters: zero-width ones and C0 controls that have no GSM counterpart. The zero-width
    # non-joiner (U+200C) is not on the list: a text with one stays UCS-2.
    ("", "\u200b\u2060\ufeff\x00\x03\x04\x10\x11\x12\x13\x14\x17\x19"),
)
# Latin letter small capitals A to Z; the list has none for Q and X.
_SMALL_CAPITALS = (
    "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a\u1d0b\u029f"
    "\u1d0d\u0274\u1d0f\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\u028f\u1d22"
)
_SMART_ENCODING: dict[int, str] = {
    **{ord(char): replacement for replacement, chars in _LOOK_ALIKES for char in chars},
    **{0xFF10 + offset: str(offset) for offset in range(10)},  # fullwidth digits
    **{0xFF21 + offset: chr(ord("A") + offset) for offset in range(26)},  # fullwidth capital letters
    **{ord(small): capital for capital, small in zip("ABCDEFGHIJKLMNOPRSTUVWYZ", _SMALL_CAPITALS, strict=True)},
}


def smart_encode(text: str) -> str:
    """Replace the characters on Twilio's Smart Encoding list with their GSM look-alikes; others are kept."""
    return text.translate(_SMART_ENCODING)


def encode_gsm(text: str) -> bytes:
    """Encode ``text`` as unpacked GSM 03.38 septets, one per byte, extension characters as ESC + code."""
    septets = bytearray()
    for index, char in enumerate(text):
        if char in _BASIC_CODES:
            septets.append(_BASIC_CODES[char])
        elif char in _EXTENSION_CODES:
            septets += bytes((_ESC, _EXTENSION_CODES[char]))
        else:
            raise ValueError(f"character {char!r} (U+{ord(char):04X}) at index {index} is not in the GSM alphabet")
    return bytes(septets)


def decode_gsm(data: bytes) -> str:
    """Decode unpacked GSM 03.38 septets (one per byte) into text.

    As TS 23.038 prescribes, ESC followed by a code the extension table leaves undefined shows the basic
    character of that code, and ESC ESC (reserved for a further table) shows a space.
    """
    chars: list[str] = []
    index = 0
    while index < len(data):
        code = data[index]
        if code > 0x7F:
            raise ValueError(f"byte 0x{code:02X} at index {index} is not a septet")
        if code != _ESC:
            chars.append(_BASIC_TABLE[code])
            index += 1
            continue
        if index + 1 == len(data):
            raise ValueError(f"escape at index {index} is not followed by a character")
        escaped = data[index + 1]
        if escaped > 0x7F:
            raise ValueError(f"byte 0x{escaped:02X} at index {index + 1} is not a septet")
        chars.append(" " if escaped == _ESC else _EXTENSION_CHARS.get(escaped, _BASIC_TABLE[escaped]))
        index += 2
    return "".join(chars)


@dataclass(frozen=True)
class Concatenation:
    """The concatenated-SMS information element: which part of which message this is."""

    reference: int
    total: int
    sequence: int
    reference_bits: Literal[8, 16] = 8

    def __post_init__(self) -> None:
        if self.reference_bits not in (8, 16):
            raise ValueError(f"reference_bits must be 8 or 16, got {self.reference_bits}")
        if not 0 <= self.reference < 1 << self.reference_bits:
            raise ValueError(f"reference {self.reference} does not fit in {self.reference_bits} bits")
        if not 1 <= self.total <= 255:
            raise ValueError(f"total must be between 1 and 255, got {self.total}")
        if not 1 <= self.sequence <= self.total:
            raise ValueError(f"sequence must be between 1 and total ({self.total}), got {self.sequence}")


class UdhError(ValueError):
    """A user data header that is malformed."""


_IEI_CONCAT_8BIT = 0x00
_IEI_CONCAT_16BIT = 0x08
_CONCAT_IE_LENGTHS = {_IEI_CONCAT_8BIT: 3, _IEI_CONCAT_16BIT: 4}


def build_udh(concat: Concatenation) -> bytes:
    """The user data header (UDHL first) that carries ``concat``."""
    if concat.reference_bits == 8:
        return bytes((5, _IEI_CONCAT_8BIT, 3, concat.reference, concat.total, concat.sequence))
    high, low = divmod(concat.reference, 256)
    return bytes((6, _IEI_CONCAT_16BIT, 4, high, low, concat.total, concat.sequence))


def _parse_concatenation(iei: int, body: bytes) -> Concatenation:
    if len(body) != _CONCAT_IE_LENGTHS[iei]:
        raise UdhError(f"concatenation IE 0x{iei:02X} must be {_CONCAT_IE_LENGTHS[iei]} octets, got {len(body)}")
    reference = int.from_bytes(body[:-2], "big")
    try:
        return Concatenation(reference, body[-2], body[-1], 8 if iei == _IEI_CONCAT_8BIT else 16)
    except ValueError as error:
        raise UdhError(f"concatenation IE 0x{iei:02X}: {error}") from None


def parse_udh(data: bytes) -> tuple[Concatenation | None, bytes]:
    """Read the UDH at the start of ``data``: its concatenation IE (if any) and the payload after the header."""
    if not data:
        raise UdhError("no UDHL octet")
    end = 1 + data[0]
    if end > len(data):
        raise UdhError(f"UDHL claims {data[0]} octets but only {len(data) - 1} follow")
    concat: Concatenation | None = None
    position = 1
    while position < end:
        if end - position < 2:
            raise UdhError(f"truncated information element header at octet {position}")
        iei, length = data[position], data[position + 1]
        body_end = position + 2 + length
        if body_end > end:
            raise UdhError(f"IE 0x{iei:02X} claims {length} octets but only {end - position - 2} remain in the UDH")
        if iei in _CONCAT_IE_LENGTHS:
            # TS 23.040 9.2.3.24: of duplicated or mutually exclusive IEs, the last occurrence is used.
            concat = _parse_concatenation(iei, data[position + 2 : body_end])
        position = body_end
    return concat, data[end:]


def split_for_concatenation(text: str, reference: int, *, reference_bits: Literal[8, 16] = 8) -> list[bytes]:
    """The parts a handset would send for ``text``: each a UDH followed by its payload.

    The GSM-7 payload is unpacked septets (as ``encode_gsm``), the UCS-2 payload UTF-16-BE. Every part carries a
    UDH, so a part holds 153 septets / 67 code units (152 / 66 with a 16-bit reference), and even a text that
    would fit a single SMS comes back as one part with a total of 1.
    """
    udh_octets = len(build_udh(Concatenation(reference, 1, 1, reference_bits)))
    gsm = is_gsm(text)
    pieces = _split(text, gsm, _capacity(gsm, udh_octets)) or ("",)
    if len(pieces) > 255:
        raise ValueError(f"text needs {len(pieces)} parts; a concatenated SMS has at most 255")
    return [
        build_udh(Concatenation(reference, len(pieces), sequence, reference_bits))
        + (encode_gsm(piece) if gsm else piece.encode("utf-16-be"))
        for sequence, piece in enumerate(pieces, start=1)
    ]
