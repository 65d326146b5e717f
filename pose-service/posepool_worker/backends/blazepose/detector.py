"""BlazePose's person detector output -> detections, as tfjs-models decodes it (pure numpy).

The detector (blazepose-detector.json, 224x224, values -1..1) outputs [B, 2254, 13] per anchor: a score logit,
then 12 box values relative to the anchor: x centre, y centre, width, height, and 4 keypoints (x, y), all in
input pixels ("reverseOutputOrder": x before y). Keypoint 0 is the hip centre, keypoint 1 a point whose
distance from it is half the body's size (the ROI's scale), keypoints 2 and 3 the same for the face.

tfjs-models (blazepose_tfjs/constants.ts, shared/calculators):
- anchors: createSsdAnchors with 5 layers, strides 8, 16, 32, 32, 32 on 224x224, one aspect ratio (1.0) plus an
  interpolated scale, fixed anchor size 1: 2 anchors per cell at stride 8 (28x28) and 16 (14x14), 6 per cell
  at stride 32 (three layers of stride 32 merged, 7x7): 1568 + 392 + 294 = 2254, ordered y, x, anchor.
- tensorsToDetections: score = sigmoid(clip(logit, -100, 100)), kept where >= 0.5; centre = raw / 224 *
  anchor size + anchor centre (anchor size 1: the anchor only shifts); sizes = raw / 224; boxes with a negative
  width or height are dropped.
- nonMaxSuppression (IoU 0.3, at most maxPoses = 1): with one pose, the highest-scoring box.
- removeDetectionLetterbox: undo the 224x224 letterbox, (v - pad) / (1 - pads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .roi import Padding

NUM_BOXES = 2254
NUM_COORDS = 12
INPUT_SIZE = 224.0
MIN_SCORE = 0.5  # BLAZEPOSE_TENSORS_TO_DETECTION_CONFIGURATION.minScoreThresh
SCORE_CLIP = 100.0
NMS_IOU = 0.3
NUM_KEYPOINTS = 4


@dataclass(frozen=True)
class AnchorConfig:
    num_layers: int = 5
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    input_size: int = 224
    anchor_offset: float = 0.5
    strides: tuple[int, ...] = (8, 16, 32, 32, 32)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(cfg: AnchorConfig | None = None) -> np.ndarray:
    """createSsdAnchors (MediaPipe's SsdAnchorsCalculator): [N, 4] = (x centre, y centre, width, height)."""
    cfg = cfg or AnchorConfig()
    anchors: list[tuple[float, float, float, float]] = []
    layer = 0
    n = len(cfg.strides)
    while layer < cfg.num_layers:
        sizes: list[tuple[float, float]] = []  # (height, width) per anchor of a cell
        last = layer
        while last < n and cfg.strides[last] == cfg.strides[layer]:
            scale = _scale(cfg.min_scale, cfg.max_scale, last, n)
            for ratio in cfg.aspect_ratios:
                sizes.append((scale / math.sqrt(ratio), scale * math.sqrt(ratio)))
            if cfg.interpolated_scale_aspect_ratio > 0:
                nxt = 1.0 if last == n - 1 else _scale(cfg.min_scale, cfg.max_scale, last + 1, n)
                s = math.sqrt(scale * nxt)
                r = cfg.interpolated_scale_aspect_ratio
                sizes.append((s / math.sqrt(r), s * math.sqrt(r)))
            last += 1
        side = math.ceil(cfg.input_size / cfg.strides[layer])
        for y in range(side):
            for x in range(side):
                for h, w in sizes:
                    xc, yc = (x + cfg.anchor_offset) / side, (y + cfg.anchor_offset) / side
                    anchors.append((xc, yc, 1.0, 1.0) if cfg.fixed_anchor_size else (xc, yc, w, h))
        layer = last
    return np.asarray(anchors, dtype=np.float32)


@dataclass(frozen=True)
class Detection:
    """One person: score, box (x_min, y_min, x_max, y_max) and 4 keypoints (x, y), normalized to the image."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray  # (4, 2)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """raw [N, 12] -> [N, 12] = (y_min, x_min, y_max, x_max, then x, y per keypoint), normalized to the input.
    tfjs-models' decodeBoxes with reverseOutputOrder, no exponential sizes, scales 224 (float32 arithmetic)."""
    raw = raw.astype(np.float32)
    ax, ay, aw, ah = (anchors[:, i] for i in range(4))
    s = np.float32(INPUT_SIZE)
    xc = raw[:, 0] / s * aw + ax
    yc = raw[:, 1] / s * ah + ay
    w = raw[:, 2] / s * ah  # tfjs-models multiplies the width by the anchor's height too (both 1 here)
    h = raw[:, 3] / s * ah
    cols = [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2]
    for k in range(NUM_KEYPOINTS):
        cols.append(raw[:, 4 + 2 * k] / s * aw + ax)
        cols.append(raw[:, 5 + 2 * k] / s * ah + ay)
    return np.stack(cols, axis=1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Boxes (y_min, x_min, y_max, x_max), as tf.image.nonMaxSuppression measures them."""
    ya0, xa0, ya1, xa1 = min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])
    yb0, xb0, yb1, xb1 = min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])
    area_a, area_b = (ya1 - ya0) * (xa1 - xa0), (yb1 - yb0) * (xb1 - xb0)
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = max(0.0, min(ya1, yb1) - max(ya0, yb0)) * max(0.0, min(xa1, xb1) - max(xa0, xb0))
    return float(inter / (area_a + area_b - inter))


def detections(
    raw: np.ndarray, anchors: np.ndarray, padding: Padding, max_detections: int = 1, min_score: float = MIN_SCORE
) -> list[Detection]:
    """One image's detector output [2254, 13] -> the detections kept by NMS, best first, letterbox removed."""
    scores = sigmoid(np.clip(raw[:, 0].astype(np.float32), -SCORE_CLIP, SCORE_CLIP))
    boxes = decode_boxes(raw[:, 1 : 1 + NUM_COORDS], anchors)
    keep = np.flatnonzero((scores >= min_score) & (boxes[:, 3] >= boxes[:, 1]) & (boxes[:, 2] >= boxes[:, 0]))
    order = keep[np.argsort(-scores[keep], kind="stable")]
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= max_detections:
            break
        if all(iou(boxes[i, :4], boxes[j, :4]) <= NMS_IOU for j in chosen):
            chosen.append(int(i))
    lr, tb = padding.left + padding.right, padding.top + padding.bottom
    out = []
    for i in chosen:
        y0, x0, y1, x1 = (float(v) for v in boxes[i, :4])
        kp = boxes[i, 4:].astype(np.float64).reshape(NUM_KEYPOINTS, 2)
        kp = np.stack([(kp[:, 0] - padding.left) / (1 - lr), (kp[:, 1] - padding.top) / (1 - tb)], axis=1)
        x0, x1 = (x0 - padding.left) / (1 - lr), (x1 - padding.left) / (1 - lr)
        y0, y1 = (y0 - padding.top) / (1 - tb), (y1 - padding.top) / (1 - tb)
        out.append(Detection(float(scores[i]), (x0, y0, x1, y1), kp))
    return out
