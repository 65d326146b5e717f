"""HMR2 cameras and joint orders: COCO-17 from OpenPose, crop vs full-image camera."""

import torch

from posepool_worker import protocol
from posepool_worker.backends.hmr2 import camera
from posepool_worker.backends.hmr2.smpl import JOINT_NAMES, OPENPOSE_NAMES


def test_openpose_to_coco17_names_line_up():
    coco = protocol.KEYPOINT_SETS["coco17"]["names"]
    assert [OPENPOSE_NAMES[i] for i in camera.OPENPOSE_TO_COCO17] == coco
    assert len(JOINT_NAMES) == 44 and JOINT_NAMES[39] == "pelvis_mpii"  # 4D-Humans EXTRA.PELVIS_IND = 39


def test_crop_projection_and_full_image_camera_agree_in_the_body_plane():
    """Points at depth 0 in the SMPL frame land on the same pixel via the crop projection mapped through the
    crop and via the full-image camera (4D-Humans cam_crop_to_full); off that plane they differ only by
    perspective strength."""
    cam = torch.tensor([[0.9, 0.05, -0.1], [0.6, -0.2, 0.3]])
    centers = torch.tensor([[300.0, 200.0], [120.0, 260.0]])
    sides = torch.tensor([220.0, 350.0])
    img_wh = torch.tensor([[640.0, 480.0], [640.0, 480.0]])
    f, s = 5000.0, 256
    pts = torch.tensor([[[0.3, -0.4, 0.0], [-0.2, 0.5, 0.0], [0.1, 0.1, 0.25]]]).expand(2, 3, 3)
    kp = camera.crop_to_image(camera.project_to_crop(pts, camera.crop_translation(cam, f, s), f, s), centers, sides)
    focal = torch.tensor([camera.full_image_focal(f, s, 640, 480)] * 2)
    assert torch.allclose(focal, torch.tensor([12500.0, 12500.0]))
    t = camera.full_image_translation(cam, centers, sides, img_wh, focal)
    p = pts + t[:, None]
    full = p[..., :2] / p[..., 2:3] * focal.view(-1, 1, 1) + img_wh[:, None] / 2
    assert torch.allclose(kp[:, :2], full[:, :2], atol=1e-2)
    assert (kp[:, 2] - full[:, 2]).abs().max() < 2.0  # depth 0.25 m: a couple of pixels


def test_crop_camera_depth_follows_the_scale():
    t = camera.crop_translation(torch.tensor([[0.5, 0.1, 0.2]]), 5000.0, 256)
    assert torch.allclose(t, torch.tensor([[0.1, 0.2, 2 * 5000 / (256 * 0.5)]]))
