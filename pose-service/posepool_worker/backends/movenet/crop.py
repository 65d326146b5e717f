"""MoveNet pre/post-processing as pure numpy functions (tfjs-models pose-detection/src/movenet semantics).

Boxes are normalized to the image: (y_min, x_min, y_max, x_max), y in units of the image height and x of
its width, so a square in pixels is generally not a square in these units; boxes may extend past 0..1.
"""

from __future__ import annotations

import numpy as np

# COCO-17 indices used by the crop logic.
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 5, 6, 11, 12
TORSO = (LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP)
MIN_CROP_KEYPOINT_SCORE = 0.2  # tfjs-models MIN_CROP_KEYPOINT_SCORE

Box = tuple[float, float, float, float]


def letterbox_box(height: int, width: int) -> Box:
    """The whole image padded on both sides to a square (tfjs-models initCropRegion, not first frame)."""
    if width > height:
        box_h = width / height
        y_min = (height / 2 - width / 2) / height
        return (y_min, 0.0, y_min + box_h, 1.0)
    box_w = height / width
    x_min = (width / 2 - height / 2) / width
    return (0.0, x_min, 1.0, x_min + box_w)


def crop_and_resize(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """tf.image.cropAndResize(image, [box], [0], [size, size], 'bilinear', 0) cast to int32 (truncation).

    image: HxWx3 uint8 (C-contiguous). Sample points: y = y_min*(H-1) + i*(y_max-y_min)*(H-1)/(size-1); a sample outside
    [0, H-1] x [0, W-1] is 0 (extrapolation value), as in TensorFlow's CropAndResize.
    """
    h, w = image.shape[:2]
    y1, x1, y2, x2 = box
    i = np.arange(size, dtype=np.float64)
    in_y = y1 * (h - 1) + i * ((y2 - y1) * (h - 1) / (size - 1))
    in_x = x1 * (w - 1) + i * ((x2 - x1) * (w - 1) / (size - 1))
    valid_y = (in_y >= 0) & (in_y <= h - 1)
    valid_x = (in_x >= 0) & (in_x <= w - 1)
    yc = np.clip(in_y, 0, h - 1)
    xc = np.clip(in_x, 0, w - 1)
    top = np.floor(yc).astype(np.intp)
    bottom = np.ceil(yc).astype(np.intp)
    left = np.floor(xc).astype(np.intp)
    right = np.ceil(xc).astype(np.intp)
    # Work on [size, size*3] views so every numpy inner loop runs over a whole row, not over 3 channels.
    y_lerp = (yc - top).astype(np.float32)[:, None]
    x_lerp = np.repeat((xc - left).astype(np.float32), 3)[None, :]

    pixels = image.reshape(h * w, 3)  # gather the four neighbours straight from the flat image, then convert

    def gather(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        flat = (rows[:, None] * w + cols[None, :]).ravel()
        return np.take(pixels, flat, axis=0).reshape(size, size * 3).astype(np.float32)

    tl, tr, bl, br = gather(top, left), gather(top, right), gather(bottom, left), gather(bottom, right)
    # top + (bottom - top) * y_lerp with top/bottom = left + (right - left) * x_lerp, as TF computes it (in place)
    tr -= tl
    tr *= x_lerp
    tr += tl
    br -= bl
    br *= x_lerp
    br += bl
    br -= tr
    br *= y_lerp
    br += tr
    out = br.reshape(size, size, 3)
    out[~valid_y] = 0.0
    out[:, ~valid_x] = 0.0
    return out.astype(np.int32)  # truncation toward zero, values are >= 0


def keypoints_to_image(keypoints: np.ndarray, box: Box, height: int, width: int) -> np.ndarray:
    """Model output (17, 3) = (y, x, score) in 0..1 of the crop -> (17, 3) = (x, y, score) in image pixels."""
    y1, x1, y2, x2 = box
    y = (y1 + keypoints[:, 0].astype(np.float64) * (y2 - y1)) * height
    x = (x1 + keypoints[:, 1].astype(np.float64) * (x2 - x1)) * width
    return np.stack([x, y, keypoints[:, 2].astype(np.float64)], axis=1)


def pose_score(scores: np.ndarray, min_keypoint_score: float = MIN_CROP_KEYPOINT_SCORE) -> float:
    """tfjs-models: mean of the keypoint scores above 0.2 (0 when none is)."""
    valid = scores[scores > min_keypoint_score]
    return float(valid.mean()) if valid.size else 0.0


def torso_visible(scores: np.ndarray) -> bool:
    return bool(
        (scores[LEFT_HIP] > MIN_CROP_KEYPOINT_SCORE or scores[RIGHT_HIP] > MIN_CROP_KEYPOINT_SCORE)
        and (scores[LEFT_SHOULDER] > MIN_CROP_KEYPOINT_SCORE or scores[RIGHT_SHOULDER] > MIN_CROP_KEYPOINT_SCORE)
    )


def determine_crop_region(keypoints_px: np.ndarray, height: int, width: int) -> Box | None:
    """tfjs-models determineNextCropRegion for keypoints (17, 3) = (x, y, score) in pixels.

    Returns the square (in pixels) crop box centred on the hip midpoint, normalized to the image, or None
    where tfjs-models falls back to the full image padded to a square (torso not visible, or the crop
    would be larger than the image's longer side).
    """
    x, y, s = keypoints_px[:, 0], keypoints_px[:, 1], keypoints_px[:, 2]
    if not torso_visible(s):
        return None
    cy = (y[LEFT_HIP] + y[RIGHT_HIP]) / 2
    cx = (x[LEFT_HIP] + x[RIGHT_HIP]) / 2
    torso = list(TORSO)
    torso_y = np.abs(cy - y[torso]).max()
    torso_x = np.abs(cx - x[torso]).max()
    body = s >= MIN_CROP_KEYPOINT_SCORE
    body_y = np.abs(cy - y[body]).max(initial=0.0)
    body_x = np.abs(cx - x[body]).max(initial=0.0)
    half = max(torso_x * 1.9, torso_y * 1.9, body_y * 1.2, body_x * 1.2)
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2:
        return None
    y0, x0 = cy - half, cx - half
    return (y0 / height, x0 / width, (y0 + 2 * half) / height, (x0 + 2 * half) / width)


def box_side_fraction(box: Box, height: int, width: int) -> float:
    """The crop's side in pixels as a fraction of the letterbox square's side (max(H, W))."""
    return (box[2] - box[0]) * height / max(height, width)


def person_bbox(
    keypoints_px: np.ndarray, height: int, width: int, min_score: float = MIN_CROP_KEYPOINT_SCORE, pad: float = 0.1
) -> list[float]:
    """[x, y, w, h] around the keypoints scoring >= min_score, grown by ``pad`` of its size on each side,
    clipped to the image. Falls back to all keypoints when none qualifies."""
    sel = keypoints_px[keypoints_px[:, 2] >= min_score]
    if sel.size == 0:
        sel = keypoints_px
    x0, y0 = sel[:, 0].min(), sel[:, 1].min()
    x1, y1 = sel[:, 0].max(), sel[:, 1].max()
    px, py = (x1 - x0) * pad, (y1 - y0) * pad
    x0, y0 = max(0.0, x0 - px), max(0.0, y0 - py)
    x1, y1 = min(float(width), x1 + px), min(float(height), y1 + py)
    return [float(x0), float(y0), float(max(0.0, x1 - x0)), float(max(0.0, y1 - y0))]
