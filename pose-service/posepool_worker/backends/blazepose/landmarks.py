"""The landmark model's outputs -> 33 keypoints in image pixels, world coordinates, the next ROI (pure numpy).

Outputs of blazepose-{lite,full,heavy} (256x256 input, values 0..1), by signature name:
- ``ld_3d`` [B, 195]: 39 landmarks x (x, y, z, visibility logit, presence logit), x/y/z in input pixels (z has
  the scale of x, relative to the hips). 0..32 are the body's keypoints, 33 and 34 auxiliary (hip centre and
  scale point, for the next frame's ROI), 35..38 unused here.
- ``output_poseflag`` [B, 1]: the pose score, already a sigmoid; tfjs-models drops the pose under 0.5.
- ``activation_heatmap`` [B, 64, 64, 39] (NHWC in the graph): sigmoid heatmaps that refine x, y.
- ``world_3d`` [B, 117]: 39 x (x, y, z) in metres, origin between the hips, axes of the ROI crop.
- ``activation_segmentation`` (not computed here).

tfjs-models' decoding (blazepose_tfjs/detector.ts):
1. tensorsToLandmarks: x / 256, y / 256, z / 256, score = sigmoid(visibility).
2. refineLandmarksFromHeatmap (kernel 7, min confidence 0.5): where the 7x7 window of a landmark's heatmap
   around its cell peaks at >= 0.5, x, y become the window's confidence-weighted mean cell / 64. (tfjs-models
   tests ``centerCol >= hmHeight`` where it means the row; reproduced, it only matters off the crop's bottom.)
3. removeLandmarkLetterbox (z scaled as x) and calculateLandmarkProjection: rotate by the ROI's rotation about
   the crop centre, scale by the ROI's size, shift to its centre (z times the ROI's width); then x, y, z times
   the image width / height / width: pixels.
4. world landmarks: the first 33 of ``world_3d``, x and y rotated by the ROI's rotation
   (calculateWorldLandmarkProjection), score copied from the 2-D landmark.
5. next ROI (tracking): the auxiliary landmarks 33, 34 through the same alignment-points rect as a detection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .roi import Padding, Rect

NUM_LANDMARKS = 39
NUM_KEYPOINTS = 33
AUX_START, AUX_END = 33, 35  # BLAZEPOSE_NUM_KEYPOINTS .. BLAZEPOSE_NUM_AUXILIARY_KEYPOINTS
LANDMARK_INPUT = 256.0
MIN_POSE_SCORE = 0.5  # BLAZEPOSE_POSE_PRESENCE_SCORE
REFINE_KERNEL = 7
REFINE_MIN_CONFIDENCE = 0.5

# The 33 keypoints (tfjs-models BLAZEPOSE_KEYPOINTS; protocol.json keypointSets.blazepose33).
# COCO-17 from BlazePose's 33, by name: nose, the eye centres (not inner/outer), ears, shoulders, elbows, wrists,
# hips, knees, ankles.
COCO17_FROM_BLAZEPOSE33 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def decode_landmarks(ld: np.ndarray) -> np.ndarray:
    """ld_3d [195] -> [39, 5] = (x, y, z) normalized to the crop (/256), visibility, presence (sigmoids)."""
    raw = ld.astype(np.float64).reshape(NUM_LANDMARKS, 5)
    out = np.empty_like(raw)
    out[:, :3] = raw[:, :3] / LANDMARK_INPUT
    out[:, 3] = sigmoid(raw[:, 3])
    out[:, 4] = sigmoid(raw[:, 4])
    return out


def refine_from_heatmap(
    landmarks: np.ndarray,
    heatmap: np.ndarray,
    kernel: int = REFINE_KERNEL,
    min_confidence: float = REFINE_MIN_CONFIDENCE,
) -> np.ndarray:
    """refineLandmarksFromHeatmap. landmarks [N, >=2] normalized; heatmap [N, H, W] (channel first).

    All landmarks at once: each one's window is read from the heatmap padded with zeros, which adds nothing to
    the sums and, the heatmap being >= 0, nothing to the peak either (tfjs-models starts the peak at 0).
    """
    out = landmarks.copy()
    n, hm_h, hm_w = heatmap.shape
    half = (kernel - 1) // 2
    col = np.trunc(landmarks[:, 0] * hm_w)
    row = np.trunc(landmarks[:, 1] * hm_h)
    # sic (tfjs-models): the column is tested against the height, the row is not tested from below; a row past
    # the bottom keeps only the window's rows that are inside (none from `half` rows past it)
    inside = (col >= 0) & (col < hm_w) & (row >= 0) & (col < hm_h) & (row < hm_h + half)
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return out
    r, c = row[idx].astype(np.int64), col[idx].astype(np.int64)
    padded = np.zeros((n, hm_h + 3 * half, hm_w + 2 * half), np.float64)  # rows: room for the ones past the bottom
    padded[:, half : half + hm_h, half : half + hm_w] = heatmap
    k = np.arange(kernel)
    windows = padded[idx[:, None, None], (r[:, None] + k)[:, :, None], (c[:, None] + k)[:, None, :]]  # [M, k, k]
    total = windows.sum(axis=(1, 2))
    peak = windows.max(axis=(1, 2))
    rows = (r[:, None] + k - half).astype(np.float64)
    cols = (c[:, None] + k - half).astype(np.float64)
    weighted_col = (windows.sum(axis=1) * cols).sum(axis=1)
    weighted_row = (windows.sum(axis=2) * rows).sum(axis=1)
    refine = (peak >= min_confidence) & (total > 0)
    sel = idx[refine]
    out[sel, 0] = weighted_col[refine] / hm_w / total[refine]
    out[sel, 1] = weighted_row[refine] / hm_h / total[refine]
    return out


def remove_letterbox(landmarks: np.ndarray, padding: Padding) -> np.ndarray:
    """removeLandmarkLetterbox on [N, >=3] (x, y, z, ...)."""
    out = landmarks.copy()
    lr, tb = padding.left + padding.right, padding.top + padding.bottom
    out[:, 0] = (landmarks[:, 0] - padding.left) / (1 - lr)
    out[:, 1] = (landmarks[:, 1] - padding.top) / (1 - tb)
    out[:, 2] = landmarks[:, 2] / (1 - lr)
    return out


def project(landmarks: np.ndarray, rect: Rect) -> np.ndarray:
    """calculateLandmarkProjection: crop-normalized [N, >=3] -> image-normalized (z scaled by the ROI's width)."""
    out = landmarks.copy()
    x, y = landmarks[:, 0] - 0.5, landmarks[:, 1] - 0.5
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    out[:, 0] = (c * x - s * y) * rect.width + rect.x_center
    out[:, 1] = (s * x + c * y) * rect.height + rect.y_center
    out[:, 2] = landmarks[:, 2] * rect.width
    return out


def project_world(world: np.ndarray, rect: Rect) -> np.ndarray:
    """calculateWorldLandmarkProjection: [N, 3] metres, x and y rotated by the ROI's rotation, z unchanged."""
    out = world.astype(np.float64).copy()
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    out[:, 0] = c * world[:, 0] - s * world[:, 1]
    out[:, 1] = s * world[:, 0] + c * world[:, 1]
    return out


def to_pixels(normalized: np.ndarray, width: int, height: int) -> np.ndarray:
    """normalizedKeypointsToKeypoints: x * W, y * H, z * W."""
    out = normalized.copy()
    out[:, 0] *= width
    out[:, 1] *= height
    out[:, 2] *= width
    return out


def coco17(keypoints33: np.ndarray) -> np.ndarray:
    """[33, >=4] (x, y, z, score) -> COCO-17 [17, 3] (x, y, score)."""
    picked = keypoints33[list(COCO17_FROM_BLAZEPOSE33)]
    return np.stack([picked[:, 0], picked[:, 1], picked[:, 3]], axis=1)


@dataclass(frozen=True)
class Pose:
    """One person's BlazePose result in image pixels (see decode_pose)."""

    score: float  # the landmark model's pose score (output_poseflag)
    keypoints: np.ndarray  # [33, 5] x, y (pixels), z (pixel scale of x), visibility, presence
    world: np.ndarray  # [33, 3] metres, hip-centred, rotated back by the ROI's rotation
    auxiliary: np.ndarray  # [2, 2] normalized x, y of landmarks 33, 34 (the next ROI's alignment points)
    roi: Rect  # the ROI this pose was found in


def decode_pose(
    ld: np.ndarray,
    pose_score: float,
    heatmap: np.ndarray,
    world: np.ndarray,
    rect: Rect,
    padding: Padding,
    width: int,
    height: int,
    min_score: float = MIN_POSE_SCORE,
) -> Pose | None:
    """One crop's outputs (ld_3d [195], poseflag, heatmap [39, 64, 64], world_3d [117]) -> a Pose, or None where
    the pose score is under ``min_score`` (tfjs-models: no pose, and its tracker resets)."""
    if not pose_score >= min_score:  # NaN included
        return None
    crop = refine_from_heatmap(decode_landmarks(ld), heatmap)
    normalized = project(remove_letterbox(crop, padding), rect)
    pixels = to_pixels(normalized[:NUM_KEYPOINTS], width, height)
    world3 = project_world(world.reshape(NUM_LANDMARKS, 3)[:NUM_KEYPOINTS], rect)
    return Pose(float(pose_score), pixels, world3, normalized[AUX_START:AUX_END, :2].copy(), rect)
