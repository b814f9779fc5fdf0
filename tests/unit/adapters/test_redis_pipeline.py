"""The pipelined Redis connection's wire format (app/adapters/redis_pipeline.py): commands packed as RESP
arrays, replies read back whole however the bytes arrive."""

from __future__ import annotations

import pytest
import redis.exceptions

from app.adapters.redis_pipeline import ReplyReader, pack_command


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert pack_command("EVALSHA", "ab", 2, "k", 1.5, b"\x00\r\n", "", "ü") == (
        b"*8\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$1\r\nk\r\n$3\r\n1.5\r\n$3\r\n\x00\r\n\r\n$0\r\n\r\n"
        b"$2\r\n\xc3\xbc\r\n")


@pytest.mark.parametrize("value", [None, True, ["a"], {"a": 1}])
def test_a_value_without_a_plain_text_form_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        pack_command("SET", "k", value)


def _read(*chunks: bytes) -> list[object]:
    reader = ReplyReader()
    out: list[object] = []
    for chunk in chunks:
        reader.feed(chunk)
        out.extend(reader.replies())
    return out


def test_every_kind_of_reply_is_read() -> None:
    wire = (b"+OK\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*-1\r\n*0\r\n"
            b"*4\r\n:1\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:7\r\n+x\r\n")
    assert _read(wire) == ["OK", -42, "he\r\nl", None, None, [], [1, "abc", None, [7, "x"]]]


def test_replies_split_anywhere_come_out_whole_and_in_order() -> None:
    wire = b"*3\r\n:1\r\n$4\r\n\xc3\xbc\xc3\xbc\r\n$-1\r\n:5\r\n$2\r\nok\r\n"
    for cut in range(1, len(wire)):
        assert _read(wire[:cut], wire[cut:]) == [[1, "üü", None], 5, "ok"], cut
    assert _read(*[wire[i:i + 1] for i in range(len(wire))]) == [[1, "üü", None], 5, "ok"]


def test_an_error_reply_answers_its_command_and_the_next_reply_still_reads() -> None:
    noscript, err, after = _read(b"-NOSCRIPT No matching script.\r\n-ERR wrong type\r\n:3\r\n")
    assert isinstance(noscript, redis.exceptions.NoScriptError) and "No matching script" in str(noscript)
    assert type(err) is redis.exceptions.ResponseError and str(err) == "ERR wrong type"
    assert after == 3


def test_a_reply_of_no_known_kind_is_refused() -> None:
    reader = ReplyReader()
    reader.feed(b"?what\r\n")
    with pytest.raises(redis.exceptions.InvalidResponse):
        reader.replies()
