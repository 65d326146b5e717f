"""Content-Length framing: round trips, partial reads, tolerated headers, bad headers, concurrent writers."""

import json
import os
import threading

import pytest

from posepool_worker.framing import FrameDecoder, FramingError, MessageWriter, encode_message, read_messages


def decode_all(data: bytes, step: int | None = None) -> list:
    decoder = FrameDecoder()
    items = []
    if step is None:
        items += decoder.feed(data)
    else:
        for i in range(0, len(data), step):
            items += decoder.feed(data[i : i + step])
    assert decoder.pending_bytes == 0
    return items


MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "method": "detect", "params": {"frames": [], "requestId": "r1"}},
    {"jsonrpc": "2.0", "method": "worker/ready", "params": {"text": "héllo ✓ 世界"}},  # multi-byte UTF-8
    {"jsonrpc": "2.0", "id": "abc", "result": {"ok": True}},
]


def test_encode_matches_vscode_jsonrpc_wire_format():
    wire = encode_message({"jsonrpc": "2.0", "id": 1, "result": "é"})
    header, body = wire.split(b"\r\n\r\n", 1)
    assert header == b"Content-Length: %d" % len(body)
    assert len(body) == len(
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": "é"}, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
    )
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 1, "result": "é"}


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7, 64])
def test_round_trip_whole_and_in_pieces(step):
    wire = b"".join(encode_message(m) for m in MESSAGES)
    items = decode_all(wire, step)
    assert [json.loads(i) for i in items] == MESSAGES


def test_header_split_exactly_at_the_separator():
    wire = encode_message(MESSAGES[0])
    cut = wire.index(b"\r\n\r\n") + 2  # between the two CRLFs
    decoder = FrameDecoder()
    assert decoder.feed(wire[:cut]) == []
    assert [json.loads(i) for i in decoder.feed(wire[cut:])] == [MESSAGES[0]]


def test_content_type_and_other_headers_are_tolerated_and_name_is_case_insensitive():
    body = b'{"jsonrpc":"2.0","method":"x"}'
    wire = (
        b"content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\nX-Other: 1\r\n\r\n"
        % len(body)
    ) + body
    assert decode_all(wire) == [body]


def test_zero_length_body_and_large_body():
    big = {"jsonrpc": "2.0", "id": 9, "result": "x" * (3 << 20)}
    wire = b"Content-Length: 0\r\n\r\n" + encode_message(big)
    items = decode_all(wire, step=1 << 16)
    assert items[0] == b""
    assert json.loads(items[1]) == big


def test_bad_header_is_reported_once_and_the_stream_resyncs():
    good = encode_message(MESSAGES[0])
    wire = b"Content-Type: text/plain\r\n\r\n" + good + b"Content-Length: abc\r\n\r\n" + good
    items = decode_all(wire, step=5)
    assert [type(i) for i in items] == [FramingError, bytes, FramingError, bytes]
    assert "Content-Length" in str(items[0])
    assert json.loads(items[1]) == json.loads(items[3]) == MESSAGES[0]


def test_runaway_header_is_an_error_not_unbounded_memory():
    decoder = FrameDecoder()
    items = decoder.feed(b"x" * (70 * 1024))
    assert len(items) == 1 and isinstance(items[0], FramingError)
    assert decoder.pending_bytes == 0


def test_nan_is_refused_because_it_is_not_json():
    with pytest.raises(ValueError):
        encode_message({"jsonrpc": "2.0", "id": 1, "result": float("nan")})


def test_read_messages_over_a_pipe_with_dribbled_writes_until_eof():
    r, w = os.pipe()
    wire = b"".join(encode_message(m) for m in MESSAGES)

    def dribble():
        for i in range(0, len(wire), 3):
            os.write(w, wire[i : i + 3])
        os.close(w)

    t = threading.Thread(target=dribble)
    t.start()
    got = [json.loads(b) for b in read_messages(r, chunk_size=5)]
    t.join()
    os.close(r)
    assert got == MESSAGES


def test_concurrent_writers_never_interleave_messages():
    r, w = os.pipe()
    writer = MessageWriter(w)
    payload = "y" * 100_000  # larger than a pipe buffer: forces partial writes

    def write_many(tag):
        for i in range(20):
            writer.write({"jsonrpc": "2.0", "method": "t", "params": {"tag": tag, "i": i, "pad": payload}})

    got = []
    reader = threading.Thread(target=lambda: got.extend(json.loads(b)["params"] for b in read_messages(r)))
    reader.start()
    writers = [threading.Thread(target=write_many, args=(tag,)) for tag in "ab"]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    os.close(w)
    reader.join()
    os.close(r)
    assert len(got) == 40
    for tag in "ab":
        assert [p["i"] for p in got if p["tag"] == tag] == list(range(20))
