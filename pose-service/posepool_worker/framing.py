"""Content-Length framing, byte-compatible with vscode-jsonrpc's StreamMessageReader / StreamMessageWriter.

A message on the wire is::

    Content-Length: <N>\\r\\n
    [Content-Type: application/vscode-jsonrpc; charset=utf-8\\r\\n]   (any other header is tolerated)
    \\r\\n
    <N bytes of UTF-8 JSON>

Stdlib only. ``FrameDecoder`` is a pure incremental parser (bytes in, message bodies out), so partial reads,
several messages in one read and a header split across reads are all the same case. ``MessageWriter``
serializes whole-message writes to a file descriptor with a lock.
"""

from __future__ import annotations

import json
import os
import threading

HEADER_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 64 * 1024


class FramingError(Exception):
    """The byte stream is not Content-Length framed (a header block without a valid Content-Length)."""


def encode_message(message: dict) -> bytes:
    """One framed message: header + UTF-8 JSON body. NaN/Infinity are refused (they are not JSON)."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def parse_headers(block: bytes) -> int:
    """The Content-Length of a header block (without its final blank line)."""
    length = None
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise FramingError(f"malformed header line {line[:80]!r}")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise FramingError(f"bad Content-Length {value.strip()[:40]!r}") from None
            if length < 0:
                raise FramingError(f"negative Content-Length {length}")
    if length is None:
        raise FramingError(f"header block without Content-Length: {block[:120]!r}")
    return length


class FrameDecoder:
    """Incremental decoder: ``feed(chunk)`` returns what the chunk completed, in stream order: message bodies
    (bytes) and, for a header block that cannot be parsed, a FramingError. A bad block is dropped and decoding
    resumes after it, so one bad header does not poison the rest of the stream.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need: int | None = None  # body length once the header block has been parsed

    def feed(self, chunk: bytes) -> list[bytes | FramingError]:
        self._buf += chunk
        items: list[bytes | FramingError] = []
        while True:
            if self._need is None:
                end = self._buf.find(HEADER_END)
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BYTES:
                        self._buf.clear()
                        items.append(FramingError(f"no header terminator within {MAX_HEADER_BYTES} bytes"))
                    return items
                block = bytes(self._buf[:end])
                del self._buf[: end + len(HEADER_END)]
                try:
                    self._need = parse_headers(block)
                except FramingError as err:
                    items.append(err)
                    continue
            if len(self._buf) < self._need:
                return items
            items.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


def read_messages(fd: int, chunk_size: int = 1 << 20):
    """Yield message bodies (bytes) and FramingErrors read from ``fd``, in order, until EOF."""
    decoder = FrameDecoder()
    while True:
        chunk = os.read(fd, chunk_size)
        if not chunk:
            return
        yield from decoder.feed(chunk)


class MessageWriter:
    """Writes framed messages to ``fd``: each message whole, one at a time (a lock), all bytes (partial writes)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def write(self, message: dict) -> None:
        data = memoryview(encode_message(message))
        with self._lock:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
