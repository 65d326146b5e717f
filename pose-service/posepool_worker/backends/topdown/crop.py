"""Affine crops of person boxes and their normalisation into one batched tensor.

Two crops, each as its model's authors do it:

- ViTPose (mmpose 0.x ``_box2cs`` + ``TopDownAffine(use_udp=True)``): the box is grown to the input aspect
  (w:h = 192:256) around its centre, then scaled by 1.25 (padding); the UDP warp maps the box's pixel extent
  onto pixel centres 0..191 x 0..255 (``get_warp_matrix(0, 2c, input_size - 1, box_size)``). Its inverse,
  ``udp_heatmap_to_image``, maps heatmap coordinates back with ``box_size / (heatmap_size - 1)``.
- HMR2 (4D-Humans ``ViTDetDataset``): the box is grown to aspect 192:256, the square of side max(w, h) is
  cropped to 256x256 with the box centre at pixel 128 (``gen_trans_from_patch_cv``, no padding), after an
  anti-alias Gaussian blur when the box is much larger than the crop.

Pixels outside the image are 0 (black) in both, as ``cv2.warpAffine``'s default border. Normalisation is
RGB / 255, minus the ImageNet mean, over the ImageNet std, done on the model's device from uint8 (a quarter of
the host-to-device bytes of float32).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VITPOSE_INPUT_WH = (192, 256)
VITPOSE_PADDING = 1.25
HMR2_CROP_SIZE = 256
HMR2_BBOX_SHAPE_WH = (192, 256)


# -- ViTPose: UDP crop --------------------------------------------------------------------------------------


def vitpose_box_to_center_size(box_xywh, input_wh=VITPOSE_INPUT_WH, padding=VITPOSE_PADDING):
    """mmpose ``_box2cs``: centre of the box, size grown to the input aspect, times ``padding``.

    Returns (center (2,), size (2,)) in pixels; mmpose's ``scale`` is this size / 200.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    aspect = input_wh[0] / input_wh[1]
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float64)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, np.array([w, h], dtype=np.float64) * padding


def udp_warp_matrix(center, size, input_wh=VITPOSE_INPUT_WH) -> np.ndarray:
    """mmpose ``get_warp_matrix(theta=0, size_input=2*center, size_dst=input_wh - 1, size_target=size)``, float32
    like mmpose's (cv2.warpAffine quantises positions to 1/32 pixel, so the matrix's precision shows in pixels)."""
    sx = (input_wh[0] - 1.0) / size[0]
    sy = (input_wh[1] - 1.0) / size[1]
    return np.array(
        [[sx, 0.0, sx * (0.5 * size[0] - center[0])], [0.0, sy, sy * (0.5 * size[1] - center[1])]], dtype=np.float32
    )


def udp_heatmap_to_image(coords: np.ndarray, center, size, heatmap_wh) -> np.ndarray:
    """mmpose ``transform_preds(..., use_udp=True)``: heatmap (x, y) -> image pixels. coords: (K, 2)."""
    out = np.empty_like(coords, dtype=np.float64)
    out[:, 0] = coords[:, 0] * (size[0] / (heatmap_wh[0] - 1.0)) + center[0] - 0.5 * size[0]
    out[:, 1] = coords[:, 1] * (size[1] / (heatmap_wh[1] - 1.0)) + center[1] - 0.5 * size[1]
    return out


# -- HMR2: square crop ---------------------------------------------------------------------------------------


def hmr2_box_to_center_size(box_xywh, bbox_shape_wh=HMR2_BBOX_SHAPE_WH) -> tuple[np.ndarray, float]:
    """4D-Humans ``expand_to_aspect_ratio(..., BBOX_SHAPE).max()``: (centre (2,), square side) in pixels."""
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float64)
    w_t, h_t = bbox_shape_wh
    if h / max(w, 1e-9) < h_t / w_t:
        h = max(w * h_t / w_t, h)
    else:
        w = max(h * w_t / h_t, w)
    return center, float(max(w, h))


def square_crop_matrix(center, side: float, out_size: int = HMR2_CROP_SIZE) -> np.ndarray:
    """``gen_trans_from_patch_cv(cx, cy, side, side, out, out, scale=1, rot=0)``: centre -> out/2, side -> out."""
    s = out_size / side
    return np.array(
        [[s, 0.0, 0.5 * out_size - s * center[0]], [0.0, s, 0.5 * out_size - s * center[1]]], dtype=np.float64
    )


def antialias_sigma(side: float, out_size: int = HMR2_CROP_SIZE) -> float:
    """4D-Humans' blur before a large downscale: sigma (f - 1) / 2 with f = side / out / 2, when f > 1.1."""
    factor = side / out_size / 2.0
    return (factor - 1.0) / 2.0 if factor > 1.1 else 0.0


def blur_region(
    image: np.ndarray, matrix: np.ndarray, out_wh: tuple[int, int], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-blur only the part of ``image`` the crop reads (plus a 4-sigma margin), as 4D-Humans blurs the
    whole image. Returns (blurred region, matrix shifted to the region's origin)."""
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [out_wh[0], 0, 1], [0, out_wh[1], 1], [out_wh[0], out_wh[1], 1]], np.float64)
    pts = corners @ inv.T
    margin = int(np.ceil(4 * sigma)) + 2
    h, w = image.shape[:2]
    x0 = int(max(0, np.floor(pts[:, 0].min()) - margin))
    y0 = int(max(0, np.floor(pts[:, 1].min()) - margin))
    x1 = int(min(w, np.ceil(pts[:, 0].max()) + margin + 1))
    y1 = int(min(h, np.ceil(pts[:, 1].max()) + margin + 1))
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    if x1 <= x0 or y1 <= y0:  # the crop lies outside the image: nothing to blur
        return image[:1, :1], shifted
    region = cv2.GaussianBlur(image[y0:y1, x0:x1], (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return region, shifted


# -- shared ----------------------------------------------------------------------------------------------------


def warp(image: np.ndarray, matrix: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """Bilinear affine crop (cv2.INTER_LINEAR, black outside), uint8 HxWx3."""
    return cv2.warpAffine(
        image,
        matrix,
        (int(out_wh[0]), int(out_wh[1])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def normalize_batch(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 on ``device``, ImageNet-normalised."""
    t = torch.from_numpy(np.ascontiguousarray(crops))
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    t = t.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return t.sub_(mean).div_(std).contiguous()
