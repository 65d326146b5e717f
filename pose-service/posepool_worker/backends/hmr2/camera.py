"""HMR2's cameras: the crop's weak-perspective-like camera, its full-image equivalent, 2D keypoints.

- Crop camera (hmr2.py ``forward_step``): pred_cam = (s, tx, ty) -> translation [tx, ty, 2 f / (256 s)] with
  f = 5000 for the 256-pixel crop; 2D keypoints = perspective projection with focal f / 256 around the crop
  centre, i.e. crop-normalised coordinates (about -0.5..0.5).
- Full image (demo.py + renderer ``cam_crop_to_full``): f_full = 5000 / 256 * max(W, H), principal point at
  the image centre, translation [tx + 2 (cx - W/2) / (b s), ty + 2 (cy - H/2) / (b s), 2 f_full / (b s)] with b
  the square box side in pixels and (cx, cy) the box centre.
- Keypoints in image pixels: the crop projection mapped back through the crop (centre + x * b), which is what
  the network was trained to fit; projecting joints3d + translation with f_full agrees with it up to the
  difference in perspective strength between the two focal lengths.
- COCO-17 from the 25 OpenPose joints: ``OPENPOSE_TO_COCO17``.
"""

from __future__ import annotations

import torch

# COCO-17 order (nose, left_eye, right_eye, left_ear, right_ear, left/right shoulder, elbow, wrist, hip, knee,
# ankle) -> index in OpenPose BODY_25 (hmr2 joints 0..24)
OPENPOSE_TO_COCO17 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)


def crop_translation(cam: torch.Tensor, focal_length: float, crop_size: int) -> torch.Tensor:
    """(B, 3) (s, tx, ty) -> (B, 3) camera translation of the crop camera."""
    return torch.stack([cam[:, 1], cam[:, 2], 2 * focal_length / (crop_size * cam[:, 0] + 1e-9)], dim=-1)


def project_to_crop(
    points: torch.Tensor, translation: torch.Tensor, focal_length: float, crop_size: int
) -> torch.Tensor:
    """4D-Humans ``perspective_projection`` with focal f / crop_size and no camera centre: (B, N, 3) -> (B, N, 2)
    in crop-normalised coordinates."""
    p = points + translation.unsqueeze(1)
    return p[..., :2] / p[..., 2:3] * (focal_length / crop_size)


def crop_to_image(kp_crop: torch.Tensor, box_center: torch.Tensor, box_side: torch.Tensor) -> torch.Tensor:
    """Crop-normalised (B, N, 2) -> image pixels: centre + x * side (the 256 crop spans ``side`` pixels)."""
    return box_center.unsqueeze(1) + kp_crop * box_side.view(-1, 1, 1)


def full_image_focal(focal_length: float, crop_size: int, width: float, height: float) -> float:
    return focal_length / crop_size * max(width, height)


def full_image_translation(
    cam: torch.Tensor, box_center: torch.Tensor, box_side: torch.Tensor, img_wh: torch.Tensor, focal_full: torch.Tensor
) -> torch.Tensor:
    """renderer.cam_crop_to_full: (B, 3) crop camera -> (B, 3) translation for the full-image camera."""
    w_2, h_2 = img_wh[:, 0] / 2.0, img_wh[:, 1] / 2.0
    bs = box_side * cam[:, 0] + 1e-9
    tz = 2 * focal_full / bs
    tx = 2 * (box_center[:, 0] - w_2) / bs + cam[:, 1]
    ty = 2 * (box_center[:, 1] - h_2) / bs + cam[:, 2]
    return torch.stack([tx, ty, tz], dim=-1)
