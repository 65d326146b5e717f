"""Rotated square crop regions for MoveNet: the crop turned to the body's axis, and keypoints mapped back.

A ``Region`` is a square in image pixels: its centre, its side and an angle. Pixel coordinates are continuous
(pixel (i, j) covers [j, j+1) x [i, i+1)), as ``crop.keypoints_to_image`` uses them. The model sees the square
turned by ``angle`` (radians): a point at (u, v) in 0..1 of the model's input (u to the right, v down) lies in
the image at

    centre + R(angle) @ ((u - 0.5) * side, (v - 0.5) * side),   R(a) = [[cos a, -sin a], [sin a, cos a]]

(image x to the right, y down, so a positive angle turns clockwise on screen). The input's "up" (0, -1) is the
image direction (sin a, -cos a): angle 0 is upright, pi a body upside down, pi/2 a body whose head points to the
image's right. ``body_angle`` gives that angle from a pose's hip-centre -> shoulder-centre vector, as BlazePose
turns its region of interest.

Sampling: angle 0 is tfjs-models' crop (``crop.crop_and_resize``, TF's CropAndResize: TF.js parity holds);
a multiple of 90 degrees is that crop turned with ``np.rot90`` (the same samples, exactly); any other angle is
one ``cv2.warpAffine`` (bilinear, zero outside the image, as CropAndResize's extrapolation value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import crop

QUARTER = math.pi / 2


def normalize_angle(angle: float) -> float:
    """The same angle in (-pi, pi]."""
    a = math.remainder(angle, 2 * math.pi)
    return math.pi if a == -math.pi else a


@dataclass(frozen=True)
class Region:
    cx: float  # centre, image pixels
    cy: float
    side: float  # side of the square, image pixels
    angle: float = 0.0  # radians, see the module doc
    exact_box: crop.Box | None = None  # the tfjs-models box it was made from (angle 0), used as is: bit-exact crops

    def quarter_turns(self) -> int | None:
        """k where ``angle`` is k * 90 degrees (k in 0..3, within 1e-9 rad), else None."""
        k = self.angle / QUARTER
        r = round(k)
        return r % 4 if abs(k - r) < 1e-9 else None

    def box(self, height: int, width: int) -> crop.Box:
        """The axis-aligned square (before turning) as a normalized box (y_min, x_min, y_max, x_max)."""
        if self.exact_box is not None:
            return self.exact_box
        h = self.side / 2
        return ((self.cy - h) / height, (self.cx - h) / width, (self.cy + h) / height, (self.cx + h) / width)

    def matrix(self) -> np.ndarray:
        """2x3 affine: (u, v, 1) in 0..1 of the model's input -> image pixels (x, y)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, -s], [s, c]]) * self.side
        offset = np.array([self.cx, self.cy]) - rot @ np.array([0.5, 0.5])
        return np.hstack([rot, offset[:, None]])


def region_from_box(box: crop.Box, height: int, width: int, angle: float = 0.0) -> Region:
    """A square box (normalized, square in pixels) as a Region turned by ``angle``."""
    y1, x1, y2, x2 = box
    exact = box if angle == 0.0 else None
    return Region((x1 + x2) / 2 * width, (y1 + y2) / 2 * height, (y2 - y1) * height, angle, exact)


def letterbox_region(height: int, width: int, angle: float = 0.0) -> Region:
    """The whole image padded to a square (``crop.letterbox_box``) turned by ``angle``; at angles that are not
    multiples of 90 degrees the square grows so that it still holds the whole image."""
    if angle == 0.0:
        return region_from_box(crop.letterbox_box(height, width), height, width)
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    side = max(width * c + height * s, width * s + height * c)
    if Region(0, 0, 1, angle).quarter_turns() is not None:
        side = float(max(height, width))
    return Region(width / 2, height / 2, side, angle)


def to_image(points_uv: np.ndarray, region: Region) -> np.ndarray:
    """(N, 2) (u, v) in 0..1 of the model's input -> (N, 2) (x, y) image pixels."""
    m = region.matrix()
    return points_uv @ m[:, :2].T + m[:, 2]


def to_input(points_xy: np.ndarray, region: Region) -> np.ndarray:
    """The inverse of ``to_image``: (N, 2) image pixels -> (N, 2) (u, v) in 0..1 of the model's input."""
    m = region.matrix()
    return (points_xy - m[:, 2]) @ np.linalg.inv(m[:, :2]).T


def keypoints_to_image(keypoints: np.ndarray, region: Region, height: int, width: int) -> np.ndarray:
    """Model output (17, 3) = (y, x, score) in 0..1 of the input -> (17, 3) = (x, y, score) in image pixels."""
    if region.angle == 0.0:  # the box arithmetic tfjs-models uses, to the bit
        return crop.keypoints_to_image(keypoints, region.box(height, width), height, width)
    kp = keypoints.astype(np.float64)
    xy = to_image(kp[:, [1, 0]], region)
    return np.concatenate([xy, kp[:, 2:3]], axis=1)


def crop_region(image: np.ndarray, region: Region, size: int) -> np.ndarray:
    """The model's input for ``region``: size x size x 3 int32 RGB 0..255 (see the module doc for sampling)."""
    k = region.quarter_turns()
    if k is not None:
        upright = crop.crop_and_resize(image, region.box(image.shape[0], image.shape[1]), size)
        return upright if k == 0 else np.ascontiguousarray(np.rot90(upright, k))
    import cv2  # here: the worker's own frame decoding imports it too; the pure functions above do not need it

    # output pixel (j, i) has its centre at u = (j + 0.5) / size; the image pixel index is the coordinate - 0.5
    m = region.matrix()
    a = m[:, :2] / size
    inverse_map = np.hstack([a, (m[:, 2] + a @ np.array([0.5, 0.5]) - 0.5)[:, None]])
    out = cv2.warpAffine(
        image,
        inverse_map,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return out.astype(np.int32)


def body_angle(keypoints_px: np.ndarray, min_score: float = crop.MIN_CROP_KEYPOINT_SCORE) -> float | None:
    """The angle of the body's up axis (hip centre -> shoulder centre; a side alone where only it scores above
    ``min_score``), or None where no shoulder or no hip does. 0 upright, pi upside down (module doc)."""
    s = keypoints_px[:, 2]
    shoulders = [i for i in (crop.LEFT_SHOULDER, crop.RIGHT_SHOULDER) if s[i] > min_score]
    hips = [i for i in (crop.LEFT_HIP, crop.RIGHT_HIP) if s[i] > min_score]
    if not shoulders or not hips:
        return None
    up = keypoints_px[shoulders, :2].mean(axis=0) - keypoints_px[hips, :2].mean(axis=0)
    if not np.any(up):
        return None
    return math.atan2(float(up[0]), float(-up[1]))


def crop_angle(keypoints_px: np.ndarray, upright_within: float) -> float:
    """The angle to turn the next crop by: the body's axis, or 0 (tfjs-models' upright crop) where the body is
    within ``upright_within`` radians of upright or its axis is unknown."""
    a = body_angle(keypoints_px)
    return 0.0 if a is None or abs(a) <= upright_within else a


def determine_region(keypoints_px: np.ndarray, height: int, width: int, angle: float) -> Region | None:
    """tfjs-models' determineNextCropRegion (``crop.determine_crop_region``) measured along the axes of a crop
    turned by ``angle``: centre the hip midpoint, half side max(1.9 x torso, 1.2 x body) extent along either
    axis. At angle 0 it is exactly ``crop.determine_crop_region``. None where that gives None (torso not
    visible, or a crop larger than the image)."""
    if angle == 0.0:
        box = crop.determine_crop_region(keypoints_px, height, width)
        return None if box is None else region_from_box(box, height, width)
    x, y, s = keypoints_px[:, 0], keypoints_px[:, 1], keypoints_px[:, 2]
    if not crop.torso_visible(s):
        return None
    cx = (x[crop.LEFT_HIP] + x[crop.RIGHT_HIP]) / 2
    cy = (y[crop.LEFT_HIP] + y[crop.RIGHT_HIP]) / 2
    c, sn = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    along_u = np.abs(dx * c + dy * sn)  # offsets in the crop's own axes: R(angle)^T @ (dx, dy)
    along_v = np.abs(-dx * sn + dy * c)
    torso = list(crop.TORSO)
    body = s >= crop.MIN_CROP_KEYPOINT_SCORE
    half = max(
        along_u[torso].max() * 1.9,
        along_v[torso].max() * 1.9,
        along_u[body].max(initial=0.0) * 1.2,
        along_v[body].max(initial=0.0) * 1.2,
    )
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2:
        return None
    return Region(float(cx), float(cy), float(2 * half), angle)
