"""Tests for SMS segmentation, GSM 03.38 coding, smart encoding and concatenation UDHs."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from smsconnector.segments import (
    GSM_BASIC,
    GSM_EXTENSION,
    Concatenation,
    UdhError,
    build_udh,
    decode_gsm,
    encode_gsm,
    is_gsm,
    non_gsm_characters,
    parse_udh,
    segment,
    smart_encode,
    split_for_concatenation,
)

SINGLE = {"GSM-7": 160, "UCS-2": 70}
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}

EMOJI = "\U0001f600"
ZHE = "\u0416"  # Cyrillic capital Zhe: a BMP character outside GSM
FLAG = "\U0001f1eb\U0001f1f7"  # two regional indicators: 4 UTF-16 code units, one grapheme
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # a ZWJ sequence: 11 code units
CONJUNCT = "\u0915\u094d\u0937\u093f"  # Devanagari KSSI: one cluster since Unicode 15.1 (GB9c)

basic_chars = st.sampled_from(sorted(GSM_BASIC))
extension_chars = st.sampled_from(sorted(GSM_EXTENSION))
bmp_non_gsm_chars = st.characters(min_codepoint=0x80, max_codepoint=0xFFFF, exclude_categories=["Cs"]).filter(
    lambda char: char not in GSM_BASIC and char not in GSM_EXTENSION
)
astral_chars = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
gsm_texts = st.text(st.one_of(basic_chars, basic_chars, extension_chars), max_size=500)
mixed_texts = st.text(st.one_of(basic_chars, extension_chars, bmp_non_gsm_chars, astral_chars), max_size=250)
# Characters that join into extended grapheme clusters: combining marks, ZWJ, variation selector, skin tone,
# regional indicators, emoji, Devanagari consonants and virama, Hangul jamo, CR and LF.
joiners = st.sampled_from(
    "\u0301\u0308\u200d\ufe0f\U0001f3fd\U0001f1eb\U0001f1f7\U0001f468\U0001f469\u0915\u094d\u0937\u093f"
    "\u1100\u1161\u11a8\r\ne"
)
overlong_clusters = st.integers(60, 140).map(lambda marks: "e" + "\u0301" * marks)  # longer than 67 from 67 on
cluster_texts = st.lists(
    st.one_of(st.text(joiners, max_size=12), st.text(basic_chars, max_size=40), overlong_clusters), max_size=20
).map("".join)
texts = st.one_of(gsm_texts, mixed_texts, cluster_texts)
PROPERTY = settings(max_examples=200, deadline=None)


def units_of(text: str, encoding: str) -> int:
    """Units counted from the encoded bytes, independently of the segmenter."""
    return len(encode_gsm(text)) if encoding == "GSM-7" else len(text.encode("utf-16-be")) // 2


@pytest.mark.parametrize(
    ("text", "encoding", "lengths", "units"),
    [
        ("a" * 160, "GSM-7", (160,), 160),
        ("a" * 161, "GSM-7", (153, 8), 161),
        (ZHE * 70, "UCS-2", (70,), 70),
        (ZHE * 71, "UCS-2", (67, 4), 71),
        ("a" * 158 + "{", "GSM-7", (159,), 160),
        ("a" * 152 + "{" + "a" * 10, "GSM-7", (152, 11), 164),
        (ZHE * 68 + EMOJI, "UCS-2", (69,), 70),
        (ZHE * 66 + EMOJI + ZHE * 10, "UCS-2", (66, 11), 78),
        ("€" * 69 + ZHE, "UCS-2", (70,), 70),
        ("`", "UCS-2", (1,), 1),
        ("\u00e7", "UCS-2", (1,), 1),
        ("\u00c7", "GSM-7", (1,), 1),
        ("caf\u00e9", "GSM-7", (4,), 4),
        ("cafe\u0301", "UCS-2", (5,), 5),
        ("a\r\nb", "GSM-7", (4,), 4),
        ("", "GSM-7", (), 0),
        ("{" * 80, "GSM-7", (80,), 160),
        ("{" * 81, "GSM-7", (76, 5), 162),
    ],
    ids=[
        "gsm-160-fits",
        "gsm-161-splits",
        "ucs2-70-fits",
        "ucs2-71-splits",
        "escape-pair-exactly-fits",
        "escape-pair-moves-to-next-part",
        "emoji-exactly-fits",
        "emoji-moves-to-next-part",
        "extension-costs-one-in-ucs2",
        "backtick",
        "c-cedilla-lower",
        "c-cedilla-upper",
        "nfc-e-acute",
        "nfd-e-acute",
        "crlf",
        "empty",
        "only-extension-fits",
        "only-extension-splits",
    ],
)
def test_segment_boundaries(text: str, encoding: str, lengths: tuple[int, ...], units: int) -> None:
    result = segment(text)
    assert result.encoding == encoding
    assert tuple(map(len, result.segments)) == lengths
    assert result.count == len(lengths)
    assert result.units == units
    assert result.text == text


def test_non_gsm_characters_are_distinct_in_order_of_appearance() -> None:
    text = "\u00e7a`\u00e7" + EMOJI + "`e\u0301"
    assert non_gsm_characters(text) == ("\u00e7", "`", EMOJI, "\u0301")
    assert segment(text).non_gsm_characters == ("\u00e7", "`", EMOJI, "\u0301")
    assert segment("plain {text}").non_gsm_characters == ()


def test_gsm_tables() -> None:
    assert len(GSM_BASIC) == 127
    assert {"\n", "\r", "@", "$", "_", "\u00c7", "\u0394"} <= GSM_BASIC
    assert "\x1b" not in GSM_BASIC and "`" not in GSM_BASIC and "\u00e7" not in GSM_BASIC
    assert GSM_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert is_gsm("Hello {world} €5\r\n") and not is_gsm("na\u00efve")


@PROPERTY
@given(texts)
def test_segments_rebuild_the_text_within_capacity(text: str) -> None:
    result = segment(text)
    assert "".join(result.segments) == text
    assert result.count == len(result.segments)
    assert result.units == units_of(text, result.encoding)
    assert result.encoding == ("GSM-7" if is_gsm(text) else "UCS-2")
    if text:
        assert (result.count == 1) == (result.units <= SINGLE[result.encoding])
    else:
        assert result.count == 0
    capacity = SINGLE[result.encoding] if result.count == 1 else CONCATENATED[result.encoding]
    for piece in result.segments:
        # Encoding each segment on its own fails on a lone surrogate half or a half escape pair.
        assert 0 < units_of(piece, result.encoding) <= capacity


@PROPERTY
@given(texts)
def test_segments_are_filled_greedily(text: str) -> None:
    result = segment(text)
    for piece, following in pairwise(result.segments):
        first = following[0] if result.encoding == "GSM-7" else regex.match(r"\X", following)[0]
        assert units_of(piece + first, result.encoding) > CONCATENATED[result.encoding]


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("a" * 65 + FLAG + "a" * 65, (65, 67, 2)),
        ("a" * 66 + "e\u0301" + "a" * 66, (66, 67, 1)),
        ("a" * 60 + FAMILY + "a" * 70, (60, 67, 14)),
        (FLAG * 40, (64, 64, 32)),
        ("a" * 65 + CONJUNCT + "a" * 10, (65, 14)),
        ("a" * 10 + "e" + "\u0301" * 100 + "a" * 10, (10, 67, 44)),
        (ZHE * 66 + "\r\n" + ZHE * 10, (67, 11)),
        ("a" * 152 + "\r\n" + "a" * 10, (153, 11)),
    ],
    ids=[
        "flag-moves-to-next-part",
        "combining-accent-moves-with-its-letter",
        "zwj-family-moves-whole",
        "only-flags",
        "indic-conjunct-moves-whole",
        "cluster-longer-than-a-part-opens-one-and-is-cut",
        "ucs2-crlf-is-two-characters",
        "gsm-crlf-is-two-characters",
    ],
)
def test_parts_keep_grapheme_clusters_whole_as_twilio_counts(text: str, lengths: tuple[int, ...]) -> None:
    """Part lengths (UTF-16 code units or septets) as Twilio's segment calculator gives them, except two: the
    conjunct, one cluster under Unicode 15.1 that the calculator's older rules divide as [67, 12], and the overlong
    cluster, which the calculator leaves in one impossible 101-unit part ([10, 101, 10]: three parts all the same)."""
    result = segment(text)
    assert tuple(units_of(piece, result.encoding) for piece in result.segments) == lengths


def cut_clusters(text: str, pieces: list[str] | tuple[str, ...]) -> list[str]:
    """The grapheme clusters of ``text`` that a boundary between ``pieces`` falls inside."""
    boundaries = {sum(map(len, pieces[:index])) for index in range(1, len(pieces))}
    return [
        match[0]
        for match in regex.finditer(r"\X", text)
        if any(match.start() < boundary < match.end() for boundary in boundaries)
    ]


@PROPERTY
@given(texts)
def test_no_part_ends_inside_a_grapheme_cluster_that_fits_a_part(text: str) -> None:
    result = segment(text)
    for cluster in cut_clusters(text, result.segments):
        assert cluster == "\r\n" or units_of(cluster, result.encoding) > CONCATENATED[result.encoding]


@PROPERTY
@given(gsm_texts)
def test_gsm_round_trip(text: str) -> None:
    assert decode_gsm(encode_gsm(text)) == text


def test_encode_gsm_values() -> None:
    assert encode_gsm("@£$\n") == b"\x00\x01\x02\x0a"
    assert encode_gsm("a€{") == b"\x61\x1b\x65\x1b\x28"


@pytest.mark.parametrize(
    ("text", "named"),
    [("ab`", r"'`' \(U\+0060\) at index 2"), ("x" + EMOJI, r"U\+1F600"), ("\u00e7", r"U\+00E7")],
    ids=["backtick", "emoji", "c-cedilla"],
)
def test_encode_gsm_rejects_non_gsm(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        encode_gsm(text)


def test_decode_gsm_unknown_escapes() -> None:
    assert decode_gsm(b"\x1b\x41") == "A"  # undefined in the extension table: the basic character
    assert decode_gsm(b"a\x1b\x1bb") == "a b"  # ESC ESC is reserved and shown as a space


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"a\x1b", "not followed"), (b"\x80", "not a septet"), (b"\x1b\xff", "not a septet")],
    ids=["dangling-escape", "high-byte", "high-byte-after-escape"],
)
def test_decode_gsm_rejects_bad_data(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_gsm(data)


@pytest.mark.parametrize(
    ("concat", "udh"),
    [
        (Concatenation(0x2A, 3, 1), b"\x05\x00\x03\x2a\x03\x01"),
        (Concatenation(0xBEEF, 2, 2, 16), b"\x06\x08\x04\xbe\xef\x02\x02"),
    ],
    ids=["8-bit", "16-bit"],
)
def test_build_udh(concat: Concatenation, udh: bytes) -> None:
    assert build_udh(concat) == udh
    assert parse_udh(udh + b"payload") == (concat, b"payload")


@PROPERTY
@given(st.data(), st.sampled_from([8, 16]))
def test_udh_round_trip(data: st.DataObject, bits: Literal[8, 16]) -> None:
    total = data.draw(st.integers(1, 255))
    concat = Concatenation(data.draw(st.integers(0, (1 << bits) - 1)), total, data.draw(st.integers(1, total)), bits)
    assert parse_udh(build_udh(concat) + b"\x01\x02") == (concat, b"\x01\x02")


def test_parse_udh_skips_unrelated_information_elements() -> None:
    port_addressing = b"\x05\x04\x0b\x84\x23\xf0"
    data = b"\x0b" + port_addressing + b"\x00\x03\x2a\x02\x01" + b"body"
    assert parse_udh(data) == (Concatenation(0x2A, 2, 1), b"body")


def test_parse_udh_without_concatenation() -> None:
    assert parse_udh(b"\x04\x05\x02\x0b\x84rest") == (None, b"rest")
    assert parse_udh(b"\x00rest") == (None, b"rest")


def test_parse_udh_uses_the_last_concatenation_element() -> None:
    data = b"\x0b\x00\x03\x01\x02\x01\x08\x04\x01\x02\x03\x02"
    assert parse_udh(data) == (Concatenation(0x0102, 3, 2, 16), b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no UDHL"),
        (b"\x05\x00\x03\x01", "UDHL claims 5 octets but only 3 follow"),
        (b"\x01\x00", "truncated information element header"),
        (b"\x03\x00\x05\x01", "IE 0x00 claims 5 octets but only 1 remain"),
        (b"\x05\x00\x03\x01\x02\x00", "sequence must be between 1 and total"),
        (b"\x05\x00\x03\x01\x02\x03", "sequence must be between 1 and total"),
        (b"\x05\x00\x03\x01\x00\x01", "total must be between 1 and 255"),
        (b"\x04\x00\x02\x01\x02", "concatenation IE 0x00 must be 3 octets, got 2"),
        (b"\x05\x08\x03\x01\x02\x01", "concatenation IE 0x08 must be 4 octets, got 3"),
    ],
    ids=[
        "empty",
        "truncated-udhl",
        "truncated-ie-header",
        "ie-length-past-end",
        "sequence-zero",
        "sequence-above-total",
        "total-zero",
        "wrong-8-bit-ie-length",
        "wrong-16-bit-ie-length",
    ],
)
def test_parse_udh_rejects_malformed_headers(data: bytes, message: str) -> None:
    with pytest.raises(UdhError, match=message):
        parse_udh(data)


@pytest.mark.parametrize(
    ("reference", "bits"),
    [(256, 8), (-1, 8), (65536, 16), (1, 12)],
    ids=["8-bit-overflow", "negative", "16-bit-overflow", "unsupported-bits"],
)
def test_concatenation_rejects_bad_reference(reference: int, bits: Literal[8, 16]) -> None:
    with pytest.raises(ValueError, match="reference"):
        Concatenation(reference, 1, 1, bits)


def part_fits(part: bytes, gsm: bool) -> bool:
    """Whether a part fits 140 octets once its septets are packed after the UDH and its fill bits."""
    udh_length = part[0] + 1
    if gsm:
        return (udh_length * 8 + 6) // 7 + len(part) - udh_length <= 160
    return len(part) <= 140


@PROPERTY
@given(texts, st.sampled_from([8, 16]), st.data())
def test_split_for_concatenation_reassembles(text: str, bits: Literal[8, 16], data: st.DataObject) -> None:
    reference = data.draw(st.integers(0, (1 << bits) - 1))
    parts = split_for_concatenation(text, reference, reference_bits=bits)
    gsm = is_gsm(text)
    parsed = [parse_udh(part) for part in parts]
    heads = [concat for concat, _ in parsed]
    assert heads == [Concatenation(reference, len(parts), sequence, bits) for sequence in range(1, len(parts) + 1)]
    payload = b"".join(payload for _, payload in parsed)
    assert (decode_gsm(payload) if gsm else payload.decode("utf-16-be")) == text
    assert all(part_fits(part, gsm) for part in parts)
    pieces = [decode_gsm(body) if gsm else body.decode("utf-16-be") for _, body in parsed]
    capacity = CONCATENATED["GSM-7" if gsm else "UCS-2"] - (bits == 16)
    for cluster in cut_clusters(text, pieces):
        assert cluster == "\r\n" or units_of(cluster, "GSM-7" if gsm else "UCS-2") > capacity


@pytest.mark.parametrize(
    ("text", "bits", "parts"),
    [
        ("a" * 153, 8, 1),
        ("a" * 153, 16, 2),
        ("a" * 158, 8, 2),
        (ZHE * 67, 8, 1),
        (ZHE * 67, 16, 2),
        (ZHE * 65 + EMOJI, 16, 2),
        ("", 8, 1),
    ],
    ids=[
        "gsm-153-8bit",
        "gsm-153-16bit",
        "gsm-single-sms-needs-two-parts",
        "ucs2-67-8bit",
        "ucs2-67-16bit",
        "emoji-at-16bit-boundary",
        "empty",
    ],
)
def test_split_for_concatenation_part_counts(text: str, bits: Literal[8, 16], parts: int) -> None:
    result = split_for_concatenation(text, 7, reference_bits=bits)
    assert len(result) == parts
    assert all(parse_udh(part)[0] == Concatenation(7, parts, index, bits) for index, part in enumerate(result, 1))


def test_split_for_concatenation_limits_parts() -> None:
    with pytest.raises(ValueError, match="at most 255"):
        split_for_concatenation("a" * 153 * 255 + "a", 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u201cHi\u201d \u2018there\u2019", "\"Hi\" 'there'"),
        ("a\u2014b\u2013c", "a-b-c"),
        ("wait\u2026", "wait..."),
        ("\u2022 item", "- item"),
        ("a\u00a0b\u2009c\u2001d", "a  b  c d"),
        ("a\u200bb\ufeff", "ab"),
        ("\uff28\uff49 \uff11\uff12", "H\uff49 12"),
        ("\u00bd \u203c \u2039x\u203a", "1/2 !! <x>"),
        ("`tick\u00b4", "'tick'"),
        (EMOJI + " \u00e7 \u00e1", EMOJI + " \u00e7 \u00e1"),
    ],
    ids=[
        "curly-quotes",
        "dashes",
        "ellipsis",
        "bullet",
        "odd-spaces",
        "zero-width",
        "fullwidth-capitals-and-digits",
        "fraction-and-marks",
        "accents-as-apostrophe",
        "unlisted-unchanged",
    ],
)
def test_smart_encode(text: str, expected: str) -> None:
    assert smart_encode(text) == expected


# Twilio's "List of characters replaced by Smart Encoding" (270 rows), grouped by what a character becomes. The page
# does not show how wide the space-like replacements are; these widths are those of Twilio's segment calculator.
TWILIO_SMART_ENCODING_LIST = (
    ('"', '00AB 00BB 201C 201D 02BA 02EE 201F 275D 275E 301D 301E FF02 201E'),
    ("'", '2018 2019 02BB 02C8 02BC 02BD 02B9 201B FF07 00B4 02CA 0060 02CB 275B 275C 0313 0314 FE10 FE11'),
    ('/', '00F7 29F8 0337 0338 2044 2215 FF0F'), ('1/4', '00BC'), ('1/2', '00BD'), ('3/4', '00BE'),
    ('\\', '29F9 29F5 20E5 FE68 FF3C'), ('_', '0332 FF3F 2017'), ('|', '20D2 20D3 2223 FF5C 23B8 23B9 23D0 239C 239F'),
    ('-', '23BC 23BD 2015 FE63 FF0D 2010 2022 2043 2014 2013'), ('@', 'FE6B FF20'), ('$', 'FE69 FF04'),
    ('!', '01C3 FE15 FE57 FF01'), ('#', 'FE5F FF03'), ('%', 'FE6A FF05'), ('&', 'FE60 FF06'),
    (',', '201A 0326 FE50 3001 FE51 FF0C FF64'), ('(', '2768 276A FE59 FF08 27EE 2985'),
    (')', '2769 276B FE5A FF09 27EF 2986'),
    ('*', '204E 2217 229B 2722 2723 2724 2725 2731 2732 2733 273A 273B 273C 273D 2743 2749 274A 274B 29C6 FE61 FF0A'),
    ('+', '02D6 FE62 FF0B'), ('.', '3002 FE52 FF0E FF61'), ('0', 'FF10'), ('1', 'FF11'), ('2', 'FF12'), ('3', 'FF13'),
    ('4', 'FF14'), ('5', 'FF15'), ('6', 'FF16'), ('7', 'FF17'), ('8', 'FF18'), ('9', 'FF19'),
    (':', '02D0 02F8 2982 A789 FE13 FF1A'), (';', '204F FE14 FE54 FF1B'), ('<', 'FE64 FF1C 203A'),
    ('=', '0347 A78A FE66 FF1D'), ('>', 'FE65 FF1E 2039'), ('?', 'FE16 FE56 FF1F'), ('A', 'FF21 1D00'),
    ('B', 'FF22 0299'), ('C', 'FF23 1D04'), ('D', 'FF24 1D05'), ('E', 'FF25 1D07'), ('F', 'FF26 A730'),
    ('G', 'FF27 0262'), ('H', 'FF28 029C'), ('I', 'FF29 026A'), ('J', 'FF2A 1D0A'), ('K', 'FF2B 1D0B'),
    ('L', 'FF2C 029F'), ('M', 'FF2D 1D0D'), ('N', 'FF2E 0274'), ('O', 'FF2F 1D0F'), ('P', 'FF30 1D18'), ('Q', 'FF31'),
    ('R', 'FF32 0280'), ('S', 'FF33 A731'), ('T', 'FF34 1D1B'), ('U', 'FF35 1D1C'), ('V', 'FF36 1D20'),
    ('W', 'FF37 1D21'), ('X', 'FF38'), ('Y', 'FF39 028F'), ('Z', 'FF3A 1D22'), ('^', '02C6 0302 FF3E 1DCD'),
    ('{', '2774 FE5B FF5B'), ('}', '2775 FE5C FF5D'), ('[', 'FF3B'), (']', 'FF3D'),
    ('~', '02DC 02F7 0303 0330 0334 223C FF5E'),
    ('  ', '00A0 2000 2002 2003 2004 2005 2006 2007 2008 2009 200A 202F 205F 3000 008D 009F 0080 0090 009B'),
    (' ', '2001 2028 2029'), ('', '200B FEFF 0010 0000 0003 0004 0017 0019 0011 0012 0013 0014 2060'),
    ('       ', '0009'), ('!!', '203C'), ('...', '2026'),
)


def test_smart_encoding_follows_twilios_documented_list() -> None:
    documented = {
        chr(int(code, 16)): replacement for replacement, codes in TWILIO_SMART_ENCODING_LIST for code in codes.split()
    }
    assert len(documented) == 270
    documented |= {"\u2039": "<", "\u203a": ">"}  # the page swaps these two angle quotes; each costs one septet
    assert {char: smart_encode(char) for char in documented} == documented
    unlisted = "".join(chr(code) for code in range(0x110000) if chr(code) not in documented)
    assert smart_encode(unlisted) == unlisted


def test_segment_with_smart_encoding_counts_wide_spaces_as_twilio_does() -> None:
    text = "a" * 139 + "\u00a0" * 11  # 139 + 22 septets once each no-break space is two spaces
    assert segment(text, smart_encoding=True).count == 2
    assert segment("a" * 138 + "\u00a0" * 11, smart_encoding=True).count == 1
    assert segment("ok\u200c", smart_encoding=True).encoding == "UCS-2"  # not on the list


@PROPERTY
@given(gsm_texts)
def test_smart_encode_keeps_gsm_text(text: str) -> None:
    assert smart_encode(text) == text


def test_segment_with_smart_encoding_becomes_gsm() -> None:
    text = "\u201cHello\u201d \u2014 it\u2019s here\u2026 " * 4
    assert segment(text).encoding == "UCS-2"
    result = segment(text, smart_encoding=True)
    assert result.encoding == "GSM-7"
    assert result.text == '"Hello" - it\'s here... ' * 4
    assert result.count == 1


def test_segment_with_smart_encoding_leaves_unicode_messages_alone() -> None:
    text = "\u201cHi\u201d " + EMOJI
    result = segment(text, smart_encoding=True)
    assert result.encoding == "UCS-2"
    assert result.text == text
    assert result.non_gsm_characters == ("\u201c", "\u201d", EMOJI)
