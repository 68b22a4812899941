"""Reading MO content: hex, UDHs (8- and 16-bit references, other IEs), declared and guessed codecs."""

from __future__ import annotations

import codecs

import pytest

from smsconnector.errors import Malformed
from smsconnector.messages import SegmentInfo
from smsconnector.segments import Concatenation, build_udh, encode_gsm
from smsconnector_openmarket.content import GSM_CODEC, guess_codec, read_content

EMOJI = "\U0001f600"


def hex_part(payload: bytes, reference: int = 8, total: int = 2, sequence: int = 1, bits: int = 8) -> dict[str, object]:
    udh = build_udh(Concatenation(reference, total, sequence, bits))  # type: ignore[arg-type]
    return {"type": "hexEncodedText", "content": (udh + payload).hex(), "udh": True}


def test_the_documented_part_is_read() -> None:
    content = read_content({"type": "hexEncodedText", "content": "050003080202207468696e6b696e672061626f75742069742e",
                            "udh": True})

    assert content.text == " thinking about it."
    assert content.segment == SegmentInfo(8, 2, 2, payload=b" thinking about it.", encoding=GSM_CODEC)


@pytest.mark.parametrize(("bits", "reference"), [(8, 0xFE), (16, 0xBEEF)])
def test_8_and_16_bit_references(bits: int, reference: int) -> None:
    content = read_content(hex_part(encode_gsm("Hello"), reference, 3, 2, bits))

    assert content.segment is not None
    assert (content.segment.reference, content.segment.total, content.segment.sequence) == (reference, 3, 2)
    assert content.text == "Hello"


def test_other_information_elements_are_skipped() -> None:
    # UDHL 11: application port addressing (IEI 0x05, 4 octets) before the 8-bit concatenation IE.
    udh = bytes([11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 0x21, 2, 1])
    content = read_content({"type": "hexEncodedText", "content": (udh + encode_gsm("Hi")).hex(), "udh": True})

    assert content.segment == SegmentInfo(0x21, 2, 1, payload=b"\x48\x69", encoding=GSM_CODEC)


def test_a_udh_without_concatenation_is_one_message() -> None:
    udh = bytes([6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0])
    content = read_content({"type": "hexEncodedText", "content": (udh + encode_gsm("Hi")).hex(), "udh": True})

    assert (content.text, content.segment) == ("Hi", None)


def test_a_concatenation_header_is_found_when_the_udh_flag_is_absent() -> None:
    message = hex_part(encode_gsm("Hi"))
    del message["udh"]

    assert read_content(message).segment is not None


def test_udh_false_keeps_the_bytes_as_text() -> None:
    assert read_content({"type": "hexEncodedText", "content": "4f6b0d0a", "udh": False}).text == "Ok\r\n"


@pytest.mark.parametrize(("message", "problem"), [
    ({"type": "hexEncodedText", "content": "zz00", "udh": True}, "not hexadecimal"),
    ({"type": "hexEncodedText", "content": "abc", "udh": True}, "not hexadecimal"),
    ({"type": "hexEncodedText", "content": "0a0003080202", "udh": True}, "UDHL claims 10 octets"),
    ({"type": "hexEncodedText", "content": "0500030802", "udh": True}, "UDHL claims 5 octets"),
    ({"type": "hexEncodedText", "content": "05000308020068", "udh": True}, "sequence must be between 1"),
    ({"type": "hexEncodedText", "content": "05000308020368", "udh": True}, "sequence must be between 1"),
    ({"type": "hexEncodedText", "content": "", "udh": True}, "no UDHL octet"),
    ({"type": "wapPush", "content": "00"}, "not text, hexEncodedText or binary"),
    ({"type": "text"}, "content must be a string"),
    ({"type": "hexEncodedText", "content": "4869", "charset": "EBCDIC"}, "unknown coding 'EBCDIC'"),
])
def test_bad_content_is_refused_with_the_reason(message: dict[str, object], problem: str) -> None:
    with pytest.raises(Malformed, match=problem):
        read_content(message)


@pytest.mark.parametrize(("declared", "payload", "text"), [
    ({"charset": "UTF-16"}, "Hi".encode("utf-16-be"), "Hi"),
    ({"charset": "GSM"}, encode_gsm("@£$ {€}"), "@£$ {€}"),
    ({"charset": "Latin-1"}, "café".encode("latin-1"), "café"),
    ({"charset": "UTF-8"}, "café".encode(), "café"),
    ({"dataCoding": 8}, "Hi".encode("utf-16-be"), "Hi"),
    ({"dcs": "0"}, encode_gsm("@"), "@"),
    ({"dataCoding": "ucs2"}, EMOJI.encode("utf-16-be"), EMOJI),
])
def test_a_declared_coding_wins_over_the_guess(declared: dict[str, object], payload: bytes, text: str) -> None:
    assert read_content({"type": "hexEncodedText", "content": payload.hex(), "udh": False, **declared}).text == text


@pytest.mark.parametrize(("label", "payload", "codec"), [
    ("Latin text in UCS-2", "Thanks, see you at 5".encode("utf-16-be"), "utf-16-be"),
    ("an emoji in UCS-2", f"ok {EMOJI}".encode("utf-16-be"), "utf-16-be"),
    ("only an emoji in UCS-2", EMOJI.encode("utf-16-be"), "utf-16-be"),
    ("Cyrillic in UCS-2", "Привет, как дела".encode("utf-16-be"), "utf-16-be"),
    ("Chinese in UCS-2", "你好，我的订单在哪里".encode("utf-16-be"), "utf-16-be"),
    ("a part ending with half an emoji", ("a" * 66).encode("utf-16-be") + b"\xd8\x3d", "utf-16-be"),
    ("a part starting with half an emoji", b"\xde\x00" + "b".encode("utf-16-be"), "utf-16-be"),
    ("GSM septets", encode_gsm("Meet me @ 5, it costs $10 & {more}"), GSM_CODEC),
    ("GSM septets with accents", encode_gsm("Müller: Café für 5€"), GSM_CODEC),
    ("UTF-8 text", "Café für 5€ 😀".encode(), "utf-8"),
    ("Latin-1 text", "Olá, até já!".encode("latin-1"), "latin-1"),
])
def test_the_codec_is_guessed_when_nothing_says(label: str, payload: bytes, codec: str) -> None:
    assert guess_codec(payload) == codec


@pytest.mark.parametrize(("label", "payload", "wrong"), [
    # Documented blind spots: each reads as valid text in the other coding too.
    ("two Chinese characters in UCS-2 (bytes below 0x80)", "你好".encode("utf-16-be"), GSM_CODEC),
    ("GSM '@' before every letter", encode_gsm("@A@B"), "utf-16-be"),
])
def test_the_guess_has_known_blind_spots(label: str, payload: bytes, wrong: str) -> None:
    assert guess_codec(payload) == wrong


def test_seven_bit_text_may_be_read_as_ascii() -> None:
    assert guess_codec(b"mail me @ x_y.com for $5", seven_bit="ascii") == "ascii"
    assert guess_codec(encode_gsm("mail me @ 5"), seven_bit="ascii") == GSM_CODEC  # 0x00 can only be a septet
    assert read_content({"type": "hexEncodedText", "content": b"$5 @ x_y".hex(), "udh": False},
                        seven_bit="ascii").text == "$5 @ x_y"


def test_a_configured_charset_replaces_the_guess() -> None:
    content = read_content({"type": "hexEncodedText", "content": "你好".encode("utf-16-be").hex(), "udh": False},
                           charset="utf-16")
    assert content.text == "你好"


def test_the_gsm_codec_reads_strictly_and_leniently() -> None:
    assert codecs.decode(encode_gsm("{ok} €5"), GSM_CODEC) == "{ok} €5"
    assert codecs.encode("{ok}", GSM_CODEC) == encode_gsm("{ok}")
    with pytest.raises(UnicodeDecodeError):
        codecs.decode(b"ok\x1b", GSM_CODEC)
    assert b"ok\x80\x1b".decode(GSM_CODEC, errors="replace") == "ok\ufffd\ufffd"
    assert b"o\x80k".decode(GSM_CODEC, errors="ignore") == "ok"
