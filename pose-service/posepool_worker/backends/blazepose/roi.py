"""Regions of interest and the image crops BlazePose's models read, as tfjs-models computes them (pure numpy).

tfjs-models pose-detection/src/blazepose_tfjs + shared/calculators (after MediaPipe's calculators):
- A Rect is normalized to the image: centre (x, y) in units of the width / height, size in the same units,
  rotation in radians (clockwise on screen, since y points down).
- detection or auxiliary landmarks -> rect: calculateAlignmentPointsRects (centre = keypoint 0, side = twice
  its distance to keypoint 1 in pixels, rotation = normalize(90 deg - atan2(-(y1 - y0), x1 - x0))), then
  transformNormalizedRect (squareLong: the longer side in pixels, times 1.25).
- rect -> model input: convertImageToTensor: the rect in pixels (getRoi), letterboxed to the tensor's aspect
  (padRoi), the affine map from output pixels to image pixels (getRotatedSubRectToRectTransformMatrix then
  getProjectiveTransformMatrix) and tf.image.transform (bilinear, zero outside the image), then the value range
  shifted from 0..255 (detector: -1..1, landmarks: 0..1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
ROI_SCALE = 1.25  # BLAZEPOSE_DETECTOR_RECT_TRANSFORMATION_CONFIG: scaleX = scaleY = 1.25, squareLong


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle: centre and size normalized to the image (x by width, y by height), rotation in radians."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0


@dataclass(frozen=True)
class Padding:
    """Letterbox padding of a model input, as fractions of its side (tfjs-models Padding)."""

    top: float = 0.0
    left: float = 0.0
    bottom: float = 0.0
    right: float = 0.0


def normalize_radians(angle: float) -> float:
    """To [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def alignment_rect(points: np.ndarray, width: int, height: int, start: int = 0, end: int = 1) -> Rect:
    """calculateAlignmentPointsRects: ``points`` (K, 2) normalized (x, y). Centre = points[start]; side = twice
    the pixel distance to points[end]; rotation turns the start->end vector to point up (90 degrees)."""
    x0, y0 = float(points[start, 0]) * width, float(points[start, 1]) * height
    x1, y1 = float(points[end, 0]) * width, float(points[end, 1]) * height
    side = math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2) * 2
    rotation = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    return Rect(x0 / width, y0 / height, side / width, side / height, rotation)


def transform_rect(rect: Rect, width: int, height: int, scale: float = ROI_SCALE) -> Rect:
    """transformNormalizedRect with BlazePose's config (no shift, squareLong, scale 1.25 on both sides)."""
    long_side = max(rect.width * width, rect.height * height)
    return replace(rect, width=long_side / width * scale, height=long_side / height * scale)


def unturn_points(points: np.ndarray, quarter_turns: int) -> np.ndarray:
    """Normalized (x, y) points found on ``np.rot90(image, quarter_turns)`` (turned counter-clockwise) -> the same
    points normalized to ``image``."""
    x, y = points[:, 0], points[:, 1]
    k = quarter_turns % 4
    if k == 1:
        return np.stack([1 - y, x], axis=1)
    if k == 2:
        return np.stack([1 - x, 1 - y], axis=1)
    if k == 3:
        return np.stack([y, 1 - x], axis=1)
    return points.copy()


def roi_from_points(points: np.ndarray, width: int, height: int) -> Rect:
    """The landmark model's ROI from two alignment points (the detection's keypoints 0, 1, or the auxiliary
    landmarks 33, 34): poseDetectionToRoi / poseLandmarksToRoi."""
    return transform_rect(alignment_rect(points, width, height), width, height)


# -- the crop ------------------------------------------------------------------------------------------------


def pad_roi(roi_px: Rect, out_w: int, out_h: int) -> tuple[Rect, Padding]:
    """padRoi with keepAspectRatio: grow the pixel ROI to the tensor's aspect; the padding as fractions."""
    tensor_aspect = out_h / out_w
    roi_aspect = roi_px.height / roi_px.width
    if tensor_aspect > roi_aspect:  # pad height
        pad = (1 - roi_aspect / tensor_aspect) / 2
        return replace(roi_px, height=roi_px.width * tensor_aspect), Padding(pad, 0.0, pad, 0.0)
    pad = (1 - tensor_aspect / roi_aspect) / 2
    return replace(roi_px, width=roi_px.height / tensor_aspect), Padding(0.0, pad, 0.0, pad)


def rotated_subrect_matrix(roi_px: Rect, width: int, height: int) -> np.ndarray:
    """getRotatedSubRectToRectTransformMatrix (no flip): a 4x4 matrix taking normalized coordinates of the
    output tensor (0..1) to normalized coordinates of the image."""
    a, b = roi_px.width, roi_px.height
    c, d = math.cos(roi_px.rotation), math.sin(roi_px.rotation)
    e, f = roi_px.x_center, roi_px.y_center
    g, h = 1.0 / width, 1.0 / height
    return np.array(
        [
            [a * c * g, -b * d * g, 0.0, (-0.5 * a * c + 0.5 * b * d + e) * g],
            [a * d * h, b * c * h, 0.0, (-0.5 * b * c - 0.5 * a * d + f) * h],
            [0.0, 0.0, a * g, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def projective_transform(matrix: np.ndarray, width: int, height: int, out_w: int, out_h: int) -> np.ndarray:
    """getProjectiveTransformMatrix: the 8 parameters of tf.image.transform, output pixel -> image pixel."""
    return np.array(
        [
            matrix[0, 0] * width / out_w,
            matrix[0, 1] * width / out_h,
            matrix[0, 3] * width,
            matrix[1, 0] * height / out_w,
            matrix[1, 1] * height / out_h,
            matrix[1, 3] * height,
            0.0,
            0.0,
        ]
    )


def crop_params(rect: Rect | None, width: int, height: int, size: int) -> tuple[np.ndarray, Padding]:
    """convertImageToTensor's geometry: (tf.image.transform parameters, letterbox padding) for the square model
    input of ``size`` over ``rect`` (None: the whole image, as the detector reads it)."""
    if rect is None:
        roi_px = Rect(0.5 * width, 0.5 * height, float(width), float(height), 0.0)
    else:
        roi_px = Rect(
            rect.x_center * width, rect.y_center * height, rect.width * width, rect.height * height, rect.rotation
        )
    roi_px, padding = pad_roi(roi_px, size, size)
    matrix = rotated_subrect_matrix(roi_px, width, height)
    return projective_transform(matrix, width, height, size, size), padding


def warp(image: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """tf.image.transform(image, transform, 'bilinear', 'constant', 0, [size, size]) for one HxWxC image (uint8
    or float): output pixel (x, y) samples the image at (a0 x + a1 y + a2, b0 x + b1 y + b2) (no projective
    part here), bilinearly, each neighbour outside the image counting as 0. Float32 [size, size, C].

    In float32 throughout, as TF.js's WASM kernel computes it: the same bits as TF.js-WASM (the CPU backend
    computes in float64, within ~5e-5 of it).
    """
    h, w, channels = image.shape
    t = transform.astype(np.float32)
    i = np.arange(size, dtype=np.float32)
    in_x = ((t[0] * i[None, :] + t[1] * i[:, None]) + t[2]).ravel()  # [out_y * size + out_x]
    in_y = ((t[3] * i[None, :] + t[4] * i[:, None]) + t[5]).ravel()
    x0 = np.floor(in_x)
    y0 = np.floor(in_y)
    x0i = x0.astype(np.int64)
    y0i = y0.astype(np.int64)
    # The part of the image the samples touch, with a border of zeros: a neighbour outside the image is clipped
    # onto that border, so it reads 0 with no masks. Gathered in the image's own type, then made float32 (exact).
    ya, yb = min(max(int(y0i.min()), 0), h), min(max(int(y0i.max()) + 2, 0), h)
    xa, xb = min(max(int(x0i.min()), 0), w), min(max(int(x0i.max()) + 2, 0), w)
    ph, pw = yb - ya + 2, xb - xa + 2
    planes = np.zeros((channels, ph, pw), image.dtype)  # channel planes: the arithmetic below runs along rows
    planes[:, 1:-1, 1:-1] = image[ya:yb, xa:xb].transpose(2, 0, 1)
    flat = planes.reshape(channels, ph * pw)
    r0 = np.clip(y0i - (ya - 1), 0, ph - 1) * pw
    r1 = np.clip(y0i - (ya - 2), 0, ph - 1) * pw
    c0 = np.clip(x0i - (xa - 1), 0, pw - 1)
    c1 = np.clip(x0i - (xa - 2), 0, pw - 1)

    def read(index: np.ndarray) -> np.ndarray:
        return np.take(flat, index, axis=1).astype(np.float32, copy=False)

    wx1, wx0 = x0 + 1 - in_x, in_x - x0  # weights of the left / right neighbours
    wy1, wy0 = y0 + 1 - in_y, in_y - y0
    top = wx1 * read(r0 + c0) + wx0 * read(r0 + c1)
    bottom = wx1 * read(r1 + c0) + wx0 * read(r1 + c1)
    out = wy1 * top + wy0 * bottom  # [C, size * size]
    return np.ascontiguousarray(out.T).reshape(size, size, channels)


def shift_values(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    """shiftImageValue: 0..255 -> low..high, as x * scale + offset in float32."""
    scale = (high - low) / 255.0
    return pixels.astype(np.float32) * np.float32(scale) + np.float32(low)


def detector_input(image: np.ndarray) -> tuple[np.ndarray, Padding]:
    """The whole image letterboxed to 224x224, values -1..1 (float32 HxWx3), and the letterbox padding."""
    h, w = image.shape[:2]
    transform, padding = crop_params(None, w, h, DETECTOR_SIZE)
    return shift_values(warp(image, transform, DETECTOR_SIZE), -1.0, 1.0), padding


def landmark_input(image: np.ndarray, rect: Rect) -> tuple[np.ndarray, Padding]:
    """The rotated ROI cropped to 256x256, values 0..1 (float32 HxWx3), and the letterbox padding (zero for the
    square ROIs BlazePose uses, up to rounding)."""
    h, w = image.shape[:2]
    transform, padding = crop_params(rect, w, h, LANDMARK_SIZE)
    return shift_values(warp(image, transform, LANDMARK_SIZE), 0.0, 1.0), padding
