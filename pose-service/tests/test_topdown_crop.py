"""Crops: ViTPose's UDP crop (mmpose formulas), HMR2's square crop (4D-Humans formulas), blur, normalisation."""

import math

import cv2
import numpy as np
import torch

from posepool_worker.backends.topdown import crop


def mmpose_get_warp_matrix(theta, size_input, size_dst, size_target):
    """mmpose/core/post_processing/post_transforms.py get_warp_matrix, written out (rotation included)."""
    theta = np.deg2rad(theta)
    m = np.zeros((2, 3))
    sx, sy = size_dst[0] / size_target[0], size_dst[1] / size_target[1]
    m[0, 0], m[0, 1] = math.cos(theta) * sx, -math.sin(theta) * sx
    m[0, 2] = sx * (
        -0.5 * size_input[0] * math.cos(theta) + 0.5 * size_input[1] * math.sin(theta) + 0.5 * size_target[0]
    )
    m[1, 0], m[1, 1] = math.sin(theta) * sy, math.cos(theta) * sy
    m[1, 2] = sy * (
        -0.5 * size_input[0] * math.sin(theta) - 0.5 * size_input[1] * math.cos(theta) + 0.5 * size_target[1]
    )
    return m


def test_box_to_center_size_is_mmpose_box2cs():
    # tall box: width grows to 0.75 * height; then x1.25
    c, s = crop.vitpose_box_to_center_size([10, 20, 30, 200])
    assert np.allclose(c, [25, 120]) and np.allclose(s, [150 * 1.25, 200 * 1.25])
    # wide box: height grows to width / 0.75
    c, s = crop.vitpose_box_to_center_size([0, 0, 300, 100])
    assert np.allclose(c, [150, 50]) and np.allclose(s, [300 * 1.25, 400 * 1.25])


def test_udp_warp_matrix_equals_mmpose():
    center, size = np.array([321.5, 140.25]), np.array([180.0, 240.0])
    ours = crop.udp_warp_matrix(center, size)
    ref = mmpose_get_warp_matrix(0, center * 2.0, np.array([192, 256]) - 1.0, size)
    assert ours.dtype == np.float32 and np.allclose(ours, ref, rtol=1e-6, atol=1e-4)  # float32 as mmpose


def test_udp_round_trip_input_pixel_to_heatmap_and_back():
    center, size = np.array([200.0, 150.0]), np.array([150.0, 200.0])
    m = crop.udp_warp_matrix(center, size)
    pts = np.array([[200.0, 150.0], [140.0, 60.0], [260.5, 240.25]])
    in_px = pts @ m[:, :2].T + m[:, 2]
    hm = in_px * np.array([47.0 / 191.0, 63.0 / 255.0])  # UDP: input 0..191 <-> heatmap 0..47
    back = crop.udp_heatmap_to_image(hm, center, size, (48, 64))
    assert np.allclose(back, pts, atol=1e-9)
    assert np.allclose(in_px[0], [95.5, 127.5])  # the box centre lands on the crop's centre


def test_warp_puts_an_image_point_where_the_matrix_says():
    img = np.zeros((300, 400, 3), np.uint8)
    img[100, 250] = 255
    center, size = crop.vitpose_box_to_center_size([200, 50, 100, 120])
    m = crop.udp_warp_matrix(center, size)
    out = crop.warp(img, m, (192, 256))
    assert out.shape == (256, 192, 3) and out.dtype == np.uint8
    y, x = np.unravel_index(np.argmax(out[..., 0]), out.shape[:2])
    ex, ey = m @ np.array([250.0, 100.0, 1.0])
    assert abs(x - ex) <= 1 and abs(y - ey) <= 1


def test_hmr2_box_is_grown_to_192_256_then_squared():
    c, side = crop.hmr2_box_to_center_size([10, 10, 100, 100])  # square -> height grows to 133.3: side 133.3
    assert np.allclose(c, [60, 60]) and math.isclose(side, 100 * 256 / 192)
    c, side = crop.hmr2_box_to_center_size([0, 0, 50, 300])  # tall -> width grows to 225: side 300
    assert math.isclose(side, 300)
    c, side = crop.hmr2_box_to_center_size([0, 0, 400, 100])  # wide -> height 533: side 533
    assert math.isclose(side, 400 * 256 / 192)


def test_square_crop_matrix_equals_gen_trans_from_patch_cv():
    cx, cy, side, out = 310.0, 170.0, 250.0, 256
    src = np.float32([[cx, cy], [cx, cy + side * 0.5], [cx + side * 0.5, cy]])
    dst = np.float32([[out * 0.5, out * 0.5], [out * 0.5, out], [out, out * 0.5]])
    ref = cv2.getAffineTransform(src, dst)
    assert np.allclose(crop.square_crop_matrix((cx, cy), side, out), ref, atol=1e-4)


def test_antialias_sigma_follows_4d_humans():
    assert crop.antialias_sigma(256 * 2.2) == 0.0  # factor 1.1: no blur
    assert math.isclose(crop.antialias_sigma(256 * 6), 1.0)  # factor 3: sigma (3 - 1) / 2


def test_blurring_only_the_crop_region_matches_blurring_the_whole_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    m = crop.square_crop_matrix((400.0, 300.0), 420.0, 64)
    sigma = 2.0
    region, shifted = crop.blur_region(img, m, (64, 64), sigma)
    full = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    assert region.shape[0] < img.shape[0] and region.shape[1] < img.shape[1]
    a = crop.warp(region, shifted, (64, 64)).astype(int)
    b = crop.warp(full, m, (64, 64)).astype(int)
    assert np.abs(a - b).max() <= 1


def test_normalize_batch_is_imagenet_normalisation_in_nchw():
    crops = np.zeros((2, 4, 3, 3), np.uint8)
    crops[1, 2, 1] = [255, 128, 0]
    t = crop.normalize_batch(crops, torch.device("cpu"))
    assert t.shape == (2, 3, 4, 3) and t.dtype == torch.float32
    expected = [(255 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225]
    assert torch.allclose(t[1, :, 2, 1], torch.tensor(expected), atol=1e-6)
    assert torch.allclose(t[0, 0, 0, 0], torch.tensor(-0.485 / 0.229), atol=1e-6)
