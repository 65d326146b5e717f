"""JSON-RPC 2.0 over a pair of file descriptors: a reader thread, one-at-a-time dispatch, serialized writes.

Stdlib only (the bootstrap needs it to report startup failures before numpy/cv2/torch are imported).

- The reader thread parses frames from the input fd and queues them. When the input closes (EOF: the
  server is gone) it calls ``on_eof`` at once, even while the main thread is deep in a batch; the worker's
  ``on_eof`` is ``os._exit(0)``.
- ``serve`` runs on the main thread and handles messages one at a time, in arrival order: requests
  (with ``id``) get exactly one response; notifications (no ``id``) never do, and unknown ones such as
  vscode-jsonrpc's ``$/cancelRequest`` are ignored; responses sent to us are ignored.
- Error codes come from protocol.json ``rpcErrorCodes``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import traceback
from typing import Any, Callable

from . import protocol
from .framing import FramingError, MessageWriter, read_messages

log = logging.getLogger("posepool_worker.rpc")

CODES = protocol.RPC_ERROR_CODES
Handler = Callable[[Any], Any]


class RpcError(Exception):
    """Raised by a handler to answer its request with a JSON-RPC error (code from protocol.json)."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid_params(message: str) -> RpcError:
    return RpcError(CODES["INVALID_PARAMS"], message)


class Connection:
    def __init__(self, in_fd: int, out_fd: int, on_eof: Callable[[], None]):
        self._in_fd = in_fd
        self._writer = MessageWriter(out_fd)
        self._on_eof = on_eof
        self._inbox: queue.Queue[bytes | FramingError | None] = queue.Queue()  # None: the input ended
        self._reader: threading.Thread | None = None

    # ---- input -------------------------------------------------------------------------------------
    def start_reader(self) -> None:
        """Start reading the input now (also during model load, so EOF is noticed at once)."""
        self._reader = threading.Thread(target=self._read_loop, name="rpc-reader", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        try:
            for item in read_messages(self._in_fd):
                self._inbox.put(item)
        except OSError as err:
            log.error("reading stdin failed: %s", err)
        self._inbox.put(None)
        self._on_eof()

    # ---- output ------------------------------------------------------------------------------------
    def notify(self, method: str, params: Any) -> None:
        self._writer.write({"jsonrpc": "2.0", "method": method, "params": params})

    def respond(self, id: Any, result: Any) -> None:
        self._writer.write({"jsonrpc": "2.0", "id": id, "result": result})

    def respond_error(self, id: Any, error: RpcError) -> None:
        self._writer.write({"jsonrpc": "2.0", "id": id, "error": error.to_json()})

    # ---- dispatch ----------------------------------------------------------------------------------
    def serve(self, handlers: dict[str, Handler], stop: Callable[[], bool] = lambda: False) -> None:
        """Handle queued messages one at a time; return when ``stop()`` is true after a message (its reply
        already written) or when the input ends and ``on_eof`` returned."""
        while True:
            item = self._inbox.get()
            if item is None:
                return
            self.handle(item, handlers)
            if stop():
                return

    def handle(self, item: bytes | FramingError, handlers: dict[str, Handler]) -> None:
        if isinstance(item, FramingError):
            log.error("framing error on stdin: %s", item)
            self.respond_error(None, RpcError(CODES["PARSE_ERROR"], f"framing error: {item}"))
            return
        try:
            message = json.loads(item.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            self.respond_error(None, RpcError(CODES["PARSE_ERROR"], f"parse error: {err}"))
            return
        if isinstance(message, list):
            self.respond_error(None, RpcError(CODES["INVALID_REQUEST"], "JSON-RPC batches are not supported"))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self.respond_error(_id_of(message), RpcError(CODES["INVALID_REQUEST"], "not a JSON-RPC 2.0 message"))
            return
        method = message.get("method")
        has_id = "id" in message
        if method is None and has_id and ("result" in message or "error" in message):
            return  # a response: the worker sends no requests, so nothing waits for it
        id = message.get("id")
        if not isinstance(method, str) or (has_id and not _valid_id(id)):
            self.respond_error(_id_of(message), RpcError(CODES["INVALID_REQUEST"], "invalid request"))
            return
        handler = handlers.get(method)
        if not has_id:  # notification: never answered
            if handler is not None:
                try:
                    handler(message.get("params"))
                except Exception:
                    log.error("notification %s failed:\n%s", method, traceback.format_exc())
            return
        if handler is None:
            self.respond_error(id, RpcError(CODES["METHOD_NOT_FOUND"], f"method not found: {method}"))
            return
        params = message.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            self.respond_error(id, invalid_params("params must be an object or an array"))
            return
        try:
            result = handler(params)
        except RpcError as err:
            self.respond_error(id, err)
            return
        except Exception as err:
            log.error("%s failed:\n%s", method, traceback.format_exc())
            self.respond_error(id, RpcError(CODES["INTERNAL_ERROR"], f"{type(err).__name__}: {err}"))
            return
        try:
            self.respond(id, result)
        except (TypeError, ValueError) as err:  # a result that is not JSON: a bug, answered as one
            log.error("%s returned a result that is not JSON: %s", method, err)
            self.respond_error(id, RpcError(CODES["INTERNAL_ERROR"], f"result is not JSON: {err}"))


def _valid_id(id: Any) -> bool:
    return id is None or (isinstance(id, (int, str)) and not isinstance(id, bool))


def _id_of(message: Any) -> Any:
    if isinstance(message, dict) and _valid_id(message.get("id")):
        return message.get("id")
    return None
