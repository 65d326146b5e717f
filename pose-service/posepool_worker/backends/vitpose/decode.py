"""ViTPose heatmaps -> keypoints: flip-back, argmax, DARK refinement in UDP form, back to image pixels.

As mmpose 0.x (the ViTPose repository) decodes with the official test_cfg (post_process='default',
use_udp=True, target_type='GaussianHeatmap', modulate_kernel=11):

1. ``argmax`` per heatmap (``_get_max_preds``); the score is the heatmap maximum, taken BEFORE any blur;
   a non-positive maximum gives the location (-1, -1) as mmpose does.
2. ``post_dark_udp``: blur each heatmap with an 11x11 Gaussian (sigma from OpenCV's rule: 2.0), clip to
   [0.001, 50], log, then one Newton step x -= H^-1 g with central differences on the edge-padded log map
   (H + eps I with eps = float32 machine epsilon).
3. ``transform_preds(use_udp=True)``: x_img = x * box_w / (W_hm - 1) + cx - box_w / 2 (same for y).

Flip test (``flip_back``): the heatmaps of the mirrored crop are mirrored back and their left/right
channels swapped, then averaged with the plain ones (no ``shift_heatmap`` in the ViTPose configs).
"""

from __future__ import annotations

import cv2
import numpy as np

from .config import DARK_KERNEL, FLIP_PAIRS


def flip_permutation(num_keypoints: int = 17, pairs=FLIP_PAIRS) -> list[int]:
    perm = list(range(num_keypoints))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def flip_back(heatmaps_flipped: np.ndarray, pairs=FLIP_PAIRS) -> np.ndarray:
    """(N, K, H, W) heatmaps of horizontally flipped crops -> heatmaps in the unflipped crops' frame."""
    return heatmaps_flipped[:, flip_permutation(heatmaps_flipped.shape[1], pairs)][..., ::-1]


def max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mmpose ``_get_max_preds``: (N, K, 2) integer locations (x, y) as float32, (N, K, 1) maxima."""
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)
    preds = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    preds = np.where(maxvals > 0.0, preds, -1.0).astype(np.float32)
    return preds, maxvals.astype(np.float32)


def dark_udp(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = DARK_KERNEL) -> np.ndarray:
    """mmpose ``post_dark_udp`` (top-down case, B == N). ``heatmaps`` is not modified."""
    hm = np.ascontiguousarray(heatmaps, dtype=np.float32).copy()
    n, k, h, w = hm.shape
    for i in range(n):
        for j in range(k):
            cv2.GaussianBlur(hm[i, j], (kernel, kernel), 0, hm[i, j])
    np.clip(hm, 0.001, 50, hm)
    np.log(hm, hm)
    pad = np.pad(hm, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge").ravel()
    index = coords[..., 0] + 1 + (coords[..., 1] + 1) * (w + 2)
    index = index + (w + 2) * (h + 2) * np.arange(0, n * k).reshape(-1, k)
    index = index.astype(int).reshape(-1, 1)
    i_ = pad[index]
    ix1, ix1_ = pad[index + 1], pad[index - 1]
    iy1, iy1_ = pad[index + w + 2], pad[index - 2 - w]
    ix1y1, ix1_y1_ = pad[index + w + 3], pad[index - w - 3]
    dx = 0.5 * (ix1 - ix1_)
    dy = 0.5 * (iy1 - iy1_)
    derivative = np.concatenate([dx, dy], axis=1).reshape(n, k, 2, 1)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    hessian = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(n, k, 2, 2)
    hessian = np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2))
    return coords - np.einsum("ijmn,ijnk->ijmk", hessian, derivative)[..., 0]


def decode_heatmaps(
    heatmaps: np.ndarray, centers: np.ndarray, sizes: np.ndarray, kernel: int = DARK_KERNEL
) -> np.ndarray:
    """(N, K, H, W) heatmaps, (N, 2) box centres and (N, 2) box sizes in pixels -> (N, K, 3) [x, y, score]."""
    n, k, h, w = heatmaps.shape
    preds, maxvals = max_preds(heatmaps)
    preds = dark_udp(preds, heatmaps, kernel)
    out = np.empty((n, k, 3), dtype=np.float64)
    out[..., 0] = preds[..., 0] * (sizes[:, 0:1] / (w - 1.0)) + centers[:, 0:1] - 0.5 * sizes[:, 0:1]
    out[..., 1] = preds[..., 1] * (sizes[:, 1:2] / (h - 1.0)) + centers[:, 1:2] - 0.5 * sizes[:, 1:2]
    out[..., 2] = maxvals[..., 0]
    return out
