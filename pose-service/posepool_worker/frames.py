"""Frame payloads (protocol/detect.ts FramePayload) -> HxWx3 uint8 RGB images, C-contiguous.

Encodings (protocol.json frameEncodings):
- ``jpeg``:  ``data`` = base64 of JPEG (or any format cv2.imdecode reads) bytes.
- ``rgb24``: ``data`` = base64 of width*height*3 bytes, row-major RGB; the length must match.
- ``file``:  ``path`` = a file of encoded image bytes (the server's per-request directory), read and decoded.
- ``rgb24-file``: ``path`` = a file of width*height*3 bytes, row-major RGB (same directory); no decoding.
A frame that cannot be decoded raises FrameError(FRAME_DECODE_FAILED); its batch goes on without it.
"""

from __future__ import annotations

import base64
import binascii

import cv2
import numpy as np

from .errors import FrameError

DECODE_FAILED = "FRAME_DECODE_FAILED"


def _fail(message: str) -> FrameError:
    return FrameError(DECODE_FAILED, message)


def _b64(payload: dict) -> bytes:
    data = payload.get("data")
    if not isinstance(data, str) or not data:
        raise _fail(f"encoding {payload.get('encoding')!r} needs a non-empty base64 'data' string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise _fail(f"'data' is not valid base64: {err}") from None


def _imdecode(raw: bytes, what: str) -> np.ndarray:
    if not raw:
        raise _fail(f"{what} is empty")
    bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or bgr.shape[0] == 0 or bgr.shape[1] == 0:
        raise _fail(f"{what} ({len(raw)} bytes) is not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _size(payload: dict, encoding: str) -> tuple[int, int]:
    width, height = payload.get("width"), payload.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise _fail(f"{encoding} needs positive integer width and height, got {width!r}x{height!r}")
    return width, height


def _path(payload: dict, encoding: str) -> str:
    path = payload.get("path")
    if not isinstance(path, str) or not path:
        raise _fail(f"encoding '{encoding}' needs a 'path' string")
    return path


def _rgb24(payload: dict) -> np.ndarray:
    width, height = _size(payload, "rgb24")
    raw = _b64(payload)
    expected = width * height * 3
    if len(raw) != expected:
        raise _fail(f"rgb24 data is {len(raw)} bytes; {width}x{height}x3 needs {expected}")
    return np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(height, width, 3)


def _file(payload: dict) -> np.ndarray:
    path = _path(payload, "file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise _fail(f"cannot read {path}: {err.strerror or err}") from None
    return _imdecode(raw, f"file {path}")


def _rgb24_file(payload: dict) -> np.ndarray:
    width, height = _size(payload, "rgb24-file")
    path = _path(payload, "rgb24-file")
    expected = width * height * 3
    try:
        pixels = np.fromfile(path, dtype=np.uint8, count=expected + 1)
    except OSError as err:
        raise _fail(f"cannot read {path}: {err.strerror or err}") from None
    if pixels.size != expected:
        held = f"{pixels.size} bytes" if pixels.size < expected else f"more than {expected} bytes"
        raise _fail(f"file {path} holds {held}; {width}x{height}x3 needs {expected}")
    return pixels.reshape(height, width, 3)


def decode_frame(payload: dict) -> np.ndarray:
    """The payload's image as HxWx3 uint8 RGB (C-contiguous), or FrameError(FRAME_DECODE_FAILED)."""
    encoding = payload.get("encoding")
    if encoding == "jpeg":
        image = _imdecode(_b64(payload), "jpeg data")
    elif encoding == "rgb24":
        image = _rgb24(payload)
    elif encoding == "file":
        image = _file(payload)
    elif encoding == "rgb24-file":
        image = _rgb24_file(payload)
    else:
        raise _fail(f"unknown encoding {encoding!r}; expected one of jpeg, rgb24, file, rgb24-file")
    return np.ascontiguousarray(image)
