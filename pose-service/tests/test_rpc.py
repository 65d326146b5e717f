"""JSON-RPC 2.0 dispatch: error codes from protocol.json, notifications, one response per request."""

import json
import os

import pytest

from posepool_worker import protocol
from posepool_worker.framing import FrameDecoder, FramingError, encode_message
from posepool_worker.rpc import Connection, RpcError, invalid_params

CODES = protocol.RPC_ERROR_CODES


class Harness:
    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.conn = Connection(in_fd=-1, out_fd=self.w, on_eof=lambda: None)
        self.calls = []
        self.handlers = {
            "echo": lambda p: (self.calls.append(p), {"echo": p})[1],
            "boom": self._boom,
            "strict": self._strict,
            "notjson": lambda p: {"value": object()},
        }

    def _boom(self, params):
        raise KeyError("kaput")

    def _strict(self, params):
        raise invalid_params("frames must be an array")

    def feed(self, body) -> list:
        raw = body if isinstance(body, (bytes, FramingError)) else json.dumps(body).encode()
        self.conn.handle(raw, self.handlers)
        try:
            data = os.read(self.r, 1 << 20)
        except BlockingIOError:
            return []
        return [json.loads(b) for b in FrameDecoder().feed(data)]

    def close(self):
        os.close(self.r)
        os.close(self.w)


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


def test_request_gets_result_with_same_id(h):
    assert h.feed({"jsonrpc": "2.0", "id": 7, "method": "echo", "params": {"a": 1}}) == [
        {"jsonrpc": "2.0", "id": 7, "result": {"echo": {"a": 1}}}
    ]
    assert h.feed({"jsonrpc": "2.0", "id": "s-1", "method": "echo"})[0]["id"] == "s-1"


def test_parse_error_has_null_id(h):
    [reply] = h.feed(b"{not json")
    assert reply["id"] is None and reply["error"]["code"] == CODES["PARSE_ERROR"] == -32700


def test_invalid_utf8_is_a_parse_error(h):
    [reply] = h.feed(b'{"jsonrpc":"2.0","id":1,"method":"\xff"}')
    assert reply["error"]["code"] == CODES["PARSE_ERROR"]


def test_framing_error_is_reported_as_parse_error(h):
    [reply] = h.feed(FramingError("header block without Content-Length"))
    assert reply["error"]["code"] == CODES["PARSE_ERROR"]


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1, "method": "echo"},  # no jsonrpc
        {"jsonrpc": "1.0", "id": 1, "method": "echo"},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": {"x": 1}, "method": "echo"},
        [{"jsonrpc": "2.0", "id": 1, "method": "echo"}],  # batches are refused
        "just a string",
    ],
)
def test_invalid_requests(h, message):
    [reply] = h.feed(message)
    assert reply["error"]["code"] == CODES["INVALID_REQUEST"] == -32600
    assert h.calls == []


def test_method_not_found(h):
    [reply] = h.feed({"jsonrpc": "2.0", "id": 3, "method": "nope"})
    assert reply == {"jsonrpc": "2.0", "id": 3, "error": {"code": -32601, "message": "method not found: nope"}}


def test_invalid_params_from_handler_and_from_shape(h):
    [reply] = h.feed({"jsonrpc": "2.0", "id": 4, "method": "strict", "params": {}})
    assert reply["error"] == {"code": CODES["INVALID_PARAMS"], "message": "frames must be an array"}
    [reply] = h.feed({"jsonrpc": "2.0", "id": 5, "method": "echo", "params": 3})
    assert reply["error"]["code"] == CODES["INVALID_PARAMS"] == -32602


def test_handler_exception_is_internal_error_and_connection_survives(h):
    [reply] = h.feed({"jsonrpc": "2.0", "id": 6, "method": "boom"})
    assert reply["error"]["code"] == CODES["INTERNAL_ERROR"]
    assert "KeyError" in reply["error"]["message"]
    [reply] = h.feed({"jsonrpc": "2.0", "id": 7, "method": "notjson"})
    assert reply["error"]["code"] == CODES["INTERNAL_ERROR"]
    assert h.feed({"jsonrpc": "2.0", "id": 8, "method": "echo"})[0]["result"] == {"echo": None}


def test_notifications_are_never_answered(h):
    assert h.feed({"jsonrpc": "2.0", "method": "echo", "params": [1]}) == []
    assert h.calls == [[1]]
    assert h.feed({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}) == []
    assert h.feed({"jsonrpc": "2.0", "method": "boom"}) == []


def test_responses_sent_to_the_worker_are_ignored(h):
    assert h.feed({"jsonrpc": "2.0", "id": 1, "result": {}}) == []
    assert h.feed({"jsonrpc": "2.0", "id": 2, "error": {"code": 1, "message": "x"}}) == []


def test_serve_stops_after_the_reply_when_asked(h):
    r_in, w_in = os.pipe()
    conn = Connection(in_fd=r_in, out_fd=h.w, on_eof=lambda: None)
    stop = {"now": False}
    handlers = {"shutdown": lambda p: (stop.update(now=True), {"ok": True})[1]}
    os.write(
        w_in,
        encode_message({"jsonrpc": "2.0", "id": 1, "method": "shutdown"})
        + encode_message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
    )
    conn.start_reader()
    conn.serve(handlers, stop=lambda: stop["now"])
    replies = [json.loads(b) for b in FrameDecoder().feed(os.read(h.r, 1 << 16))]
    assert replies == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]  # the second was never handled
    os.close(w_in)
    os.close(r_in)


def test_eof_calls_on_eof_from_the_reader_thread():
    import threading

    r_in, w_in = os.pipe()
    done = threading.Event()
    conn = Connection(in_fd=r_in, out_fd=-1, on_eof=done.set)
    conn.start_reader()
    os.close(w_in)
    assert done.wait(2)
    conn.serve({})  # returns at EOF
    os.close(r_in)


def test_rpc_error_serializes_data_only_when_present():
    assert RpcError(-32002, "m").to_json() == {"code": -32002, "message": "m"}
    assert RpcError(-32002, "m", {"x": 1}).to_json() == {"code": -32002, "message": "m", "data": {"x": 1}}
