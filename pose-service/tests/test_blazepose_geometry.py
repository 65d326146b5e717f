"""BlazePose's pure pre/post-processing (tfjs-models semantics): SSD anchors and detection decoding, ROI maths
(rotation, square, scale), the rotated crop, landmark decoding and projection back to the image, COCO-17."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posepool_worker import protocol
from posepool_worker.backends.blazepose import detector as det
from posepool_worker.backends.blazepose import landmarks as lm
from posepool_worker.backends.blazepose import roi
from posepool_worker.backends.blazepose.roi import Padding, Rect

# -- anchors and detections ---------------------------------------------------------------------------------


def test_anchors_are_2254_in_tfjs_models_order():
    a = det.ssd_anchors()
    assert a.shape == (2254, 4) == (det.NUM_BOXES, 4)
    # stride 8: 28x28 cells x 2 anchors, then stride 16: 14x14 x 2, then the three stride-32 layers merged: 7x7 x 6
    assert 28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6 == 2254
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28, 1, 1]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 28, 0.5 / 28, 1, 1])  # x runs fastest, then y
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14, 1, 1])
    assert np.allclose(a[1960:1966, :2], [[0.5 / 7, 0.5 / 7]] * 6)
    assert np.allclose(a[-1], [6.5 / 7, 6.5 / 7, 1, 1])
    assert (a[:, 2:] == 1).all()  # fixed anchor size: the anchor only shifts the centre


def raw_detection(anchor: int, score_logit: float, box_px, keypoints_px) -> np.ndarray:
    """A detector output [2254, 13] with one anchor set: box (x, y, w, h) and keypoints (x, y) relative to the
    anchor centre, in 224-input pixels."""
    raw = np.zeros((2254, 13), np.float32)
    raw[:, 0] = -20.0
    raw[anchor, 0] = score_logit
    raw[anchor, 1:5] = box_px
    raw[anchor, 5:13] = np.asarray(keypoints_px, np.float32).ravel()
    return raw


def test_a_detection_is_decoded_relative_to_its_anchor_and_the_letterbox_removed():
    anchors = det.ssd_anchors()
    k = 2 * (10 * 28 + 14)  # stride 8, cell y=10, x=14
    ax, ay = anchors[k, 0], anchors[k, 1]
    raw = raw_detection(k, 3.0, (22.4, -11.2, 44.8, 89.6), [(0, 0), (0, -44.8), (5, 5), (6, 6)])
    found = det.detections(raw, anchors, Padding())
    assert len(found) == 1
    d = found[0]
    assert d.score == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-6)
    xc, yc = ax + 0.1, ay - 0.05
    assert d.box == pytest.approx((xc - 0.1, yc - 0.2, xc + 0.1, yc + 0.2), abs=1e-6)
    assert d.keypoints[0] == pytest.approx([ax, ay], abs=1e-6)
    assert d.keypoints[1] == pytest.approx([ax, ay - 0.2], abs=1e-6)
    # letterbox: a 448x224 image was padded top and bottom by a quarter each
    pad = Padding(top=0.25, bottom=0.25)
    [d2] = det.detections(raw, anchors, pad)
    assert d2.keypoints[1] == pytest.approx([ax, (ay - 0.2 - 0.25) / 0.5], abs=1e-6)


def test_low_scores_are_nobody_and_the_best_box_wins():
    anchors = det.ssd_anchors()
    assert det.detections(raw_detection(5, -0.1, (0, 0, 20, 20), [(0, 0)] * 4), anchors, Padding()) == []
    raw = raw_detection(100, 2.0, (0, 0, 30, 60), [(0, 0)] * 4)
    raw[900, 0], raw[900, 1:5] = 4.0, (0, 0, 30, 60)  # elsewhere, scoring higher
    [best] = det.detections(raw, anchors, Padding())
    assert best.score == pytest.approx(1 / (1 + math.exp(-4)), rel=1e-6)
    # several poses allowed: the second survives NMS only where it overlaps the first little
    assert len(det.detections(raw, anchors, Padding(), max_detections=2)) == 2
    raw[901, 0], raw[901, 1:5] = 3.5, (0, 0, 30, 60)  # the next anchor, the same box shifted by a few pixels
    assert len(det.detections(raw, anchors, Padding(), max_detections=3)) == 2


def test_iou():
    assert det.iou(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    assert det.iou(np.array([0, 0, 1, 1]), np.array([0, 0.5, 1, 1.5])) == pytest.approx(1 / 3)
    assert det.iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0.0


# -- ROI maths --------------------------------------------------------------------------------------------------


def test_roi_rotation_turns_the_body_upright():
    w, h = 640, 480
    up = roi.alignment_rect(np.array([[0.5, 0.5], [0.5, 0.3]]), w, h)  # scale point above the hips: upright
    assert up.rotation == pytest.approx(0.0)
    assert up.width * w == pytest.approx(2 * 0.2 * h) and up.height * h == pytest.approx(2 * 0.2 * h)
    right = roi.alignment_rect(np.array([[0.5, 0.5], [0.7, 0.5]]), w, h)  # head to the right: turn by +90 deg
    assert right.rotation == pytest.approx(math.pi / 2)
    left = roi.alignment_rect(np.array([[0.5, 0.5], [0.3, 0.5]]), w, h)
    assert left.rotation == pytest.approx(-math.pi / 2)
    down = roi.alignment_rect(np.array([[0.5, 0.5], [0.5, 0.7]]), w, h)  # upside down
    assert abs(down.rotation) == pytest.approx(math.pi)
    assert -math.pi <= down.rotation < math.pi


def test_roi_is_square_in_pixels_and_grown_by_a_quarter():
    w, h = 640, 480
    r = roi.transform_rect(Rect(0.5, 0.5, 0.25, 0.5, 0.3), w, h)  # 160 x 240 pixels
    assert r.width * w == pytest.approx(240 * 1.25) and r.height * h == pytest.approx(240 * 1.25)
    assert (r.x_center, r.y_center, r.rotation) == (0.5, 0.5, 0.3)
    full = roi.roi_from_points(np.array([[0.5, 0.6], [0.5, 0.4]]), w, h)
    assert full.width * w == pytest.approx(2 * 0.2 * h * 1.25) and full.rotation == pytest.approx(0.0)


def test_pad_roi_letterboxes_to_the_tensor_aspect():
    wide, pad = roi.pad_roi(Rect(100, 50, 200, 100, 0.0), 224, 224)
    assert (wide.width, wide.height) == (200, 200) and pad == Padding(0.25, 0.0, 0.25, 0.0)
    tall, pad = roi.pad_roi(Rect(50, 100, 100, 400, 0.0), 224, 224)
    assert (tall.width, tall.height) == (400, 400) and pad == Padding(0.0, 0.375, 0.0, 0.375)
    lm_out = np.array([[0.5, 0.25, 0.1], [0.5, 0.75, 0.2]])
    back = lm.remove_letterbox(lm_out, Padding(0.25, 0.0, 0.25, 0.0))
    assert back[:, :2] == pytest.approx(np.array([[0.5, 0.0], [0.5, 1.0]]))
    assert back[:, 2] == pytest.approx([0.1, 0.2])


@pytest.mark.parametrize("rotation", [0.0, 0.4, math.pi / 2, -2.5])
def test_crop_and_projection_are_inverse(rotation):
    """A point of the crop, projected back (calculateLandmarkProjection), is where the crop sampled it."""
    w, h = 640, 480
    rect = Rect(0.45, 0.55, 300 / w, 300 / h, rotation)
    transform, padding = roi.crop_params(rect, w, h, 256)
    assert padding == Padding()
    for u, v in [(0.5, 0.5), (0.1, 0.2), (0.9, 0.7)]:
        px, py = u * 256, v * 256  # crop pixel -> image pixel through tf.image.transform's parameters
        ix = transform[0] * px + transform[1] * py + transform[2]
        iy = transform[3] * px + transform[4] * py + transform[5]
        [[x, y, _]] = lm.project(np.array([[u, v, 0.0]]), rect)
        assert (x * w, y * h) == pytest.approx((ix, iy), abs=1e-6)


def test_a_dot_in_a_rotated_crop_projects_back_onto_itself():
    w, h = 400, 300
    image = np.zeros((h, w, 3), np.uint8)
    image[200:203, 120:123] = 255  # a 3x3 white dot centred on (121, 201)
    rect = Rect(150 / w, 180 / h, 120 / w, 120 / h, 0.7)
    crop, padding = roi.landmark_input(image, rect)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.float32 and crop.min() >= 0 and crop.max() <= 1
    gray = crop.mean(axis=2)
    rows, cols = np.mgrid[0:256, 0:256]
    v, u = (rows * gray).sum() / gray.sum() / 256, (cols * gray).sum() / gray.sum() / 256  # the dot's centroid
    [[x, y, _]] = lm.project(lm.remove_letterbox(np.array([[u, v, 0.0]]), padding), rect)
    assert (x * w, y * h) == pytest.approx((121.0, 201.0), abs=0.3)


def test_warp_reads_zero_outside_the_image_and_pixels_inside():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float64)
    out = roi.warp(image, identity, 6)
    assert np.array_equal(out[:4, :5], image.astype(np.float32))
    assert (out[4:] == 0).all() and (out[:, 5:] == 0).all()
    half = roi.warp(image, np.array([1, 0, -0.5, 0, 1, 0, 0, 0]), 2)  # half a pixel left: blends with the 0 outside
    assert half[0, 0] == pytest.approx(0.5 * image[0, 0].astype(np.float32))
    assert half[0, 1] == pytest.approx(0.5 * (image[0, 0].astype(np.float32) + image[0, 1]))


def test_detector_input_is_the_letterboxed_frame_in_minus_one_to_one():
    image = np.full((100, 200, 3), 255, np.uint8)
    x, padding = roi.detector_input(image)
    assert x.shape == (224, 224, 3) and padding == Padding(0.25, 0.0, 0.25, 0.0)
    assert x[112, 112] == pytest.approx([1.0, 1.0, 1.0]) and x[10, 112] == pytest.approx([-1.0, -1.0, -1.0])


# -- landmarks ----------------------------------------------------------------------------------------------


def test_landmarks_are_scaled_to_the_crop_with_sigmoid_visibility():
    ld = np.zeros(195, np.float32)
    ld[0:5] = (128.0, 64.0, -25.6, 0.0, 2.0)
    out = lm.decode_landmarks(ld)
    assert out.shape == (39, 5)
    assert out[0] == pytest.approx([0.5, 0.25, -0.1, 0.5, 1 / (1 + math.exp(-2))])


def gaussian_heatmap(channel: int, row: float, col: float, peak: float) -> np.ndarray:
    rows, cols = np.mgrid[0:64, 0:64]
    hm = np.zeros((39, 64, 64), np.float32)
    hm[channel] = peak * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / 2.0)
    return hm


def test_heatmap_refinement_moves_a_landmark_to_the_window_centroid():
    landmarks = np.zeros((39, 5))
    landmarks[3, :2] = (20.2 / 64, 30.4 / 64)  # cell (row 30, col 20)
    refined = lm.refine_from_heatmap(landmarks, gaussian_heatmap(3, 31.0, 21.0, 0.9))
    assert refined[3, 0] * 64 == pytest.approx(21.0, abs=0.05) and refined[3, 1] * 64 == pytest.approx(31.0, abs=0.05)
    weak = lm.refine_from_heatmap(landmarks, gaussian_heatmap(3, 31.0, 21.0, 0.4))  # peak < 0.5: kept
    assert np.array_equal(weak, landmarks)
    outside = landmarks.copy()
    outside[3, 0] = 1.2  # off the crop
    assert np.array_equal(lm.refine_from_heatmap(outside, gaussian_heatmap(3, 31.0, 21.0, 0.9)), outside)
    # tfjs-models compares the column against the height (sic): a row just below the heatmap is still refined
    below = landmarks.copy()
    below[3, 1] = 65.5 / 64
    row = lm.refine_from_heatmap(below, gaussian_heatmap(3, 63.0, 21.0, 0.9))[3, 1] * 64  # from rows 62, 63 alone
    assert row == pytest.approx((62 * math.exp(-0.5) + 63) / (math.exp(-0.5) + 1), abs=1e-3)


def test_world_landmarks_turn_with_the_roi_z_unchanged():
    world = np.array([[1.0, 0.0, 0.3], [0.0, 2.0, -0.1]])
    turned = lm.project_world(world, Rect(0.5, 0.5, 0.1, 0.1, math.pi / 2))
    assert turned == pytest.approx(np.array([[0.0, 1.0, 0.3], [-2.0, 0.0, -0.1]]), abs=1e-12)


def test_decode_pose_maps_to_pixels_and_drops_low_pose_scores():
    ld = np.zeros((39, 5), np.float32)
    ld[:, :2] = 128.0  # every landmark at the crop centre
    ld[:, 2] = 25.6
    ld[:, 3] = 10.0
    world = np.tile(np.array([0.1, 0.2, 0.3], np.float32), 39)
    hm = np.zeros((39, 64, 64), np.float32)
    rect = Rect(0.25, 0.5, 0.5, 0.5, 0.0)
    pose = lm.decode_pose(ld.ravel(), 0.9, hm, world, rect, Padding(), 400, 200)
    assert pose is not None
    assert pose.keypoints.shape == (33, 5) and pose.world.shape == (33, 3)
    assert pose.keypoints[0, :3] == pytest.approx([100.0, 100.0, 0.1 * 0.5 * 400])
    assert pose.auxiliary == pytest.approx(np.array([[0.25, 0.5]] * 2))
    assert lm.decode_pose(ld.ravel(), 0.49, hm, world, rect, Padding(), 400, 200) is None
    assert lm.decode_pose(ld.ravel(), float("nan"), hm, world, rect, Padding(), 400, 200) is None


def test_coco17_is_taken_from_the_33_by_name():
    coco, _ = protocol.keypoint_set("coco17")
    names33, skeleton33 = protocol.keypoint_set("blazepose33")
    assert len(names33) == 33 and len(set(names33)) == 33
    assert [names33[i] for i in lm.COCO17_FROM_BLAZEPOSE33] == coco  # eyes: the centres (2, 5), not inner/outer
    assert all(0 <= a < 33 and 0 <= b < 33 for a, b in skeleton33) and len(set(map(tuple, skeleton33))) == len(
        skeleton33
    )
    kp33 = np.arange(33 * 5, dtype=np.float64).reshape(33, 5)
    out = lm.coco17(kp33)
    assert out.shape == (17, 3) and out[1].tolist() == [10.0, 11.0, 13.0]  # left_eye = 2: x, y, visibility


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_points_found_on_a_turned_frame_map_back(k):
    """roi.unturn_points: a spot found on np.rot90(image, k) is where it is in the image, normalized."""
    h, w = 60, 90
    for x, y in [(20, 10), (70, 45)]:
        img = np.zeros((h, w), np.uint8)
        img[y, x] = 255
        turned = np.rot90(img, k)
        i, j = np.unravel_index(np.argmax(turned), turned.shape)
        found = np.array([[(j + 0.5) / turned.shape[1], (i + 0.5) / turned.shape[0]]])
        assert roi.unturn_points(found, k)[0] == pytest.approx([(x + 0.5) / w, (y + 0.5) / h])
