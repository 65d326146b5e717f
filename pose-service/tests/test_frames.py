"""Frame decoding: jpeg/rgb24/file to RGB uint8, and FRAME_DECODE_FAILED for each way a payload can be bad."""

import base64

import cv2
import numpy as np
import pytest

from conftest import FIXTURES
from posepool_worker.errors import FrameError
from posepool_worker.frames import decode_frame


def colour_image():
    """Left half pure red, right half pure blue (RGB), 16x24: channel order errors show up at once."""
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (255, 0, 0)
    rgb[:, 12:] = (0, 0, 255)
    return rgb


def png_b64(rgb):
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def test_jpeg_fixture_decodes_to_rgb_uint8_contiguous():
    raw = (FIXTURES / "messi5.jpg").read_bytes()
    img = decode_frame({"index": 0, "encoding": "jpeg", "data": base64.b64encode(raw).decode()})
    bgr = cv2.imread(str(FIXTURES / "messi5.jpg"))
    assert img.dtype == np.uint8 and img.flags["C_CONTIGUOUS"] and img.shape == bgr.shape
    assert np.array_equal(img, bgr[:, :, ::-1])


def test_encoded_image_channel_order_is_rgb():
    img = decode_frame({"index": 0, "encoding": "jpeg", "data": png_b64(colour_image())})
    assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[0, -1]) == (0, 0, 255)


def test_rgb24_round_trip():
    rgb = colour_image()
    img = decode_frame(
        {"index": 0, "encoding": "rgb24", "width": 24, "height": 16, "data": base64.b64encode(rgb.tobytes()).decode()}
    )
    assert np.array_equal(img, rgb) and img.flags["C_CONTIGUOUS"] and img.flags["WRITEABLE"]


def test_rgb24_file_reads_raw_pixels_from_the_path(tmp_path):
    rgb = colour_image()
    path = tmp_path / "f.rgb"
    path.write_bytes(rgb.tobytes())
    img = decode_frame({"index": 0, "encoding": "rgb24-file", "path": str(path), "width": 24, "height": 16})
    assert np.array_equal(img, rgb) and img.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "size, message",
    [
        (24 * 16 * 3 - 1, "holds 1151 bytes; 24x16x3 needs 1152"),
        (24 * 16 * 3 + 5, "holds more than 1152 bytes"),
        (0, "holds 0 bytes"),
    ],
)
def test_rgb24_file_of_the_wrong_size_is_frame_decode_failed(tmp_path, size, message):
    path = tmp_path / "f.rgb"
    path.write_bytes(b"\0" * size)
    with pytest.raises(FrameError) as err:
        decode_frame({"index": 0, "encoding": "rgb24-file", "path": str(path), "width": 24, "height": 16})
    assert err.value.code == "FRAME_DECODE_FAILED" and message in err.value.message


def test_file_encoding_reads_the_path(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(base64.b64decode(png_b64(colour_image())))
    img = decode_frame({"index": 0, "encoding": "file", "path": str(path), "width": 24, "height": 16})
    assert np.array_equal(img, colour_image())


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"encoding": "jpeg", "data": base64.b64encode(b"\xff\xd8 not really a jpeg").decode()}, "not a decodable"),
        ({"encoding": "jpeg", "data": "%%% not base64 %%%"}, "base64"),
        ({"encoding": "jpeg"}, "base64 'data'"),
        ({"encoding": "rgb24", "width": 4, "height": 4, "data": base64.b64encode(b"\0" * 47).decode()}, "needs 48"),
        ({"encoding": "rgb24", "width": 0, "height": 4, "data": "AAAA"}, "positive integer"),
        ({"encoding": "file", "path": "/nonexistent/frame.jpg"}, "cannot read"),
        ({"encoding": "file"}, "'path'"),
        ({"encoding": "rgb24-file", "width": 4, "height": 4}, "'path'"),
        ({"encoding": "rgb24-file", "path": "/nonexistent/frame.rgb", "width": 4, "height": 4}, "cannot read"),
        ({"encoding": "rgb24-file", "path": "/nonexistent/frame.rgb"}, "positive integer"),
        ({"encoding": "webp", "data": "AAAA"}, "unknown encoding"),
    ],
)
def test_bad_payloads_are_frame_decode_failed(payload, fragment):
    with pytest.raises(FrameError) as info:
        decode_frame({"index": 3, **payload})
    assert info.value.code == "FRAME_DECODE_FAILED"
    assert fragment in info.value.message


def test_empty_file_is_frame_decode_failed(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(FrameError, match="empty"):
        decode_frame({"index": 0, "encoding": "file", "path": str(path)})
