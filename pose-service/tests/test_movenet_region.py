"""MoveNet's turned crop regions (pure geometry): region <-> image round trips, the turned crop's pixels, the body's
angle from keypoints, and the crop region measured along the body's axis."""

import math

import numpy as np
import pytest

from posepool_worker.backends.movenet import crop, region

H, W, S = 120, 200, 64


def skeleton(angle: float = 0.0, centre=(100.0, 60.0), scale: float = 1.0) -> np.ndarray:
    """An upright COCO-17 stick figure (hips at ``centre``), turned by ``angle`` (the region module's sense: its
    up axis points at (sin a, -cos a)), all keypoints scoring 0.9."""
    up = {  # offsets from the hip centre with the body upright (y down)
        0: (0, -40),
        1: (-2, -42),
        2: (2, -42),
        3: (-5, -40),
        4: (5, -40),
        5: (-8, -30),
        6: (8, -30),
        7: (-12, -18),
        8: (12, -18),
        9: (-14, -6),
        10: (14, -6),
        11: (-8, 0),
        12: (8, 0),
        13: (-7, 16),
        14: (7, 16),
        15: (-8, 32),
        16: (8, 32),
    }
    c, s = math.cos(angle), math.sin(angle)
    kp = np.zeros((17, 3))
    for k, (dx, dy) in up.items():
        dx, dy = dx * scale, dy * scale
        kp[k] = (centre[0] + c * dx - s * dy, centre[1] + s * dx + c * dy, 0.9)
    return kp


def test_quarter_turns_are_recognised():
    assert region.Region(0, 0, 1, 0.0).quarter_turns() == 0
    assert region.Region(0, 0, 1, math.pi / 2).quarter_turns() == 1
    assert region.Region(0, 0, 1, math.pi).quarter_turns() == 2
    assert region.Region(0, 0, 1, -math.pi / 2).quarter_turns() == 3
    assert region.Region(0, 0, 1, 0.3).quarter_turns() is None
    assert region.normalize_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert region.normalize_angle(-math.pi) == pytest.approx(math.pi)


def test_an_upright_region_is_the_box_tfjs_models_uses():
    box = crop.letterbox_box(H, W)
    r = region.region_from_box(box, H, W)
    assert r.box(H, W) == pytest.approx(box)
    assert region.letterbox_region(H, W) == r
    assert r.box(H, W) == box  # the box itself, not one recomputed from the centre: the crop is bit-exact
    kp = np.random.default_rng(0).random((17, 3)).astype(np.float32)
    assert np.array_equal(region.keypoints_to_image(kp, r, H, W), crop.keypoints_to_image(kp, box, H, W))
    img = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert np.array_equal(region.crop_region(img, r, S), crop.crop_and_resize(img, box, S))


@pytest.mark.parametrize("angle", [0.0, 0.4, math.pi / 2, 2.5, math.pi, -1.1, -math.pi / 2])
def test_input_and_image_coordinates_round_trip(angle):
    r = region.Region(87.5, 40.25, 150.0, angle)
    uv = np.random.default_rng(2).random((50, 2)) * 1.4 - 0.2
    xy = region.to_image(uv, r)
    assert np.allclose(region.to_input(xy, r), uv)
    # the centre of the input is the region's centre; its side is the region's side whatever the angle
    assert region.to_image(np.array([[0.5, 0.5]]), r) == pytest.approx(np.array([[87.5, 40.25]]))
    corners = region.to_image(np.array([[0, 0], [1, 0], [1, 1]]), r)
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(150)
    assert np.linalg.norm(corners[2] - corners[1]) == pytest.approx(150)
    # the input's up is the image direction (sin a, -cos a)
    up = region.to_image(np.array([[0.5, 0.0]]), r)[0] - region.to_image(np.array([[0.5, 0.5]]), r)[0]
    assert up / np.linalg.norm(up) == pytest.approx([math.sin(angle), -math.cos(angle)], abs=1e-9)


def test_model_output_maps_through_the_turned_region():
    """(y, x) in 0..1 of the input -> pixels, the same mapping as to_image."""
    r = region.Region(100, 60, 80, 2.0)
    out = np.array([[0.25, 0.75, 0.5], [0.5, 0.5, 0.9]], np.float32)
    px = region.keypoints_to_image(out, r, H, W)
    assert px[:, :2] == pytest.approx(region.to_image(out[:, [1, 0]].astype(np.float64), r))
    assert px[:, 2] == pytest.approx([0.5, 0.9])


@pytest.mark.parametrize("quarter", [1, 2, 3])
def test_a_quarter_turned_crop_is_the_upright_crop_turned_exactly(quarter):
    img = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    up = region.Region(90, 50, 70, 0.0)
    turned = region.Region(90, 50, 70, quarter * math.pi / 2)
    assert np.array_equal(region.crop_region(img, turned, S), np.rot90(region.crop_region(img, up, S), quarter))


def test_the_affine_crop_agrees_with_the_exact_one_next_to_it():
    """Just off a quarter turn the crop is one cv2.warpAffine; it samples where the exact crop does (TF's
    CropAndResize places samples a fraction of a pixel differently), so a smooth image comes out the same."""
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 1.2, yy * 2.0, (xx + yy) * 0.7], axis=2).astype(np.uint8)
    for quarter in range(4):
        exact = region.crop_region(img, region.Region(100, 60, 60, quarter * math.pi / 2), S).astype(float)
        near = region.crop_region(img, region.Region(100, 60, 60, quarter * math.pi / 2 + 1e-6), S).astype(float)
        assert np.abs(exact - near).mean() < 2.0


@pytest.mark.parametrize("angle", [0.3, 2.2, -2.7, math.pi, math.pi / 2])
def test_a_point_in_the_image_is_found_where_the_turned_crop_shows_it(angle):
    """A bright pixel: where it lands in the turned crop, mapped back through the region, is where it was."""
    for x, y in [(80, 45), (120, 70), (95, 60)]:
        img = np.zeros((H, W, 3), np.uint8)
        img[y - 1 : y + 2, x - 1 : x + 2] = 255  # 3x3, centre (x + 0.5, y + 0.5) in continuous pixels
        r = region.Region(100, 60, 64, angle)
        patch = region.crop_region(img, r, S)[..., 0].astype(float)
        i, j = np.unravel_index(np.argmax(patch), patch.shape)
        # the peak's centroid over its neighbourhood, in input coordinates
        win = patch[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        ii, jj = np.mgrid[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        uv = np.array([[((jj + 0.5) * win).sum() / win.sum() / S, ((ii + 0.5) * win).sum() / win.sum() / S]])
        assert region.to_image(uv, r)[0] == pytest.approx([x + 0.5, y + 0.5], abs=1.0)


def test_the_turned_letterbox_holds_the_whole_frame():
    for angle in (0.0, math.pi / 2, math.pi, 0.7, -2.0):
        r = region.letterbox_region(H, W, angle)
        corners = np.array([[0, 0], [W, 0], [0, H], [W, H]], float)
        uv = region.to_input(corners, r)
        assert (uv >= -1e-9).all() and (uv <= 1 + 1e-9).all()
    assert region.letterbox_region(H, W, math.pi / 2).side == max(H, W)
    assert region.letterbox_region(H, W, math.pi / 4).side == pytest.approx((H + W) / math.sqrt(2))


def test_body_angle_from_hips_to_shoulders():
    assert region.body_angle(skeleton(0.0)) == pytest.approx(0.0)
    assert abs(region.body_angle(skeleton(math.pi))) == pytest.approx(math.pi)
    assert region.body_angle(skeleton(math.pi / 2)) == pytest.approx(math.pi / 2)  # head to the image's right
    assert region.body_angle(skeleton(-1.0)) == pytest.approx(-1.0)
    kp = skeleton(0.8)
    kp[[crop.RIGHT_SHOULDER, crop.RIGHT_HIP], 2] = 0.1  # one side alone still gives the axis
    assert region.body_angle(kp) == pytest.approx(0.8)
    kp[crop.LEFT_HIP, 2] = 0.1  # no hip: no axis
    assert region.body_angle(kp) is None


def test_the_crop_turns_only_beyond_the_upright_band():
    within = math.radians(45)
    assert region.crop_angle(skeleton(0.3), within) == 0.0
    assert region.crop_angle(skeleton(-0.7), within) == 0.0
    assert region.crop_angle(skeleton(1.2), within) == pytest.approx(1.2)
    assert abs(region.crop_angle(skeleton(math.pi), within)) == pytest.approx(math.pi)
    assert region.crop_angle(np.zeros((17, 3)), within) == 0.0  # no torso: upright


def test_the_upright_region_is_tfjs_models_crop_region():
    kp = skeleton(0.2)
    box = crop.determine_crop_region(kp, H, W)
    assert box is not None
    r = region.determine_region(kp, H, W, 0.0)
    assert r is not None and r.box(H, W) == pytest.approx(box)


@pytest.mark.parametrize("angle", [math.pi, math.pi / 2, 2.0, -2.4])
def test_the_region_along_a_turned_body_is_the_upright_bodys_region_turned(angle):
    """A body turned about its hip centre gets the region the upright body gets (same centre and side), turned
    by the same angle: the model sees the same upright body."""
    upright = region.determine_region(skeleton(0.0), 400, 400, 0.0)
    turned = region.determine_region(skeleton(angle, centre=(100.0, 60.0)), 400, 400, angle)
    assert upright is not None and turned is not None
    assert (turned.cx, turned.cy, turned.side) == pytest.approx((upright.cx, upright.cy, upright.side))
    assert turned.angle == angle
    # each keypoint lands where it lands in the upright body's input
    up_uv = region.to_input(skeleton(0.0)[:, :2], upright)
    turned_uv = region.to_input(skeleton(angle)[:, :2], turned)
    assert np.allclose(up_uv, turned_uv)


def test_no_turned_region_without_a_torso_or_for_a_body_larger_than_the_frame():
    kp = skeleton(math.pi)
    kp[[crop.LEFT_HIP, crop.RIGHT_HIP], 2] = 0.0
    assert region.determine_region(kp, H, W, math.pi) is None
    big = skeleton(math.pi, centre=(10.0, 10.0), scale=6.0)  # tfjs-models: half side clamped, still over half the frame
    assert region.determine_region(big, H, W, math.pi) is None
    assert crop.determine_crop_region(skeleton(0.0, centre=(10.0, 10.0), scale=6.0), H, W) is None
