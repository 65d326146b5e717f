"""MoveNet pre/post-processing (pure numpy): letterbox, TF CropAndResize, crop region, pose score, bbox."""

import numpy as np
import pytest

from posepool_worker.backends.movenet import crop


def tf_crop_and_resize_reference(image, box, size):
    """TensorFlow's CropAndResize (bilinear, extrapolation 0) written as the kernel's loops, float64."""
    h, w = image.shape[:2]
    y1, x1, y2, x2 = box
    out = np.zeros((size, size, 3), np.float64)
    hs = (y2 - y1) * (h - 1) / (size - 1)
    ws = (x2 - x1) * (w - 1) / (size - 1)
    for i in range(size):
        in_y = y1 * (h - 1) + i * hs
        if in_y < 0 or in_y > h - 1:
            continue
        t, b = int(np.floor(in_y)), int(np.ceil(in_y))
        yl = in_y - t
        for j in range(size):
            in_x = x1 * (w - 1) + j * ws
            if in_x < 0 or in_x > w - 1:
                continue
            left, right = int(np.floor(in_x)), int(np.ceil(in_x))
            xl = in_x - left
            top = image[t, left] + (image[t, right] - image[t, left].astype(np.float64)) * xl
            bottom = image[b, left] + (image[b, right] - image[b, left].astype(np.float64)) * xl
            out[i, j] = top + (bottom - top) * yl
    return out


def test_letterbox_box_pads_the_short_side_symmetrically():
    y0, x0, y1, x1 = crop.letterbox_box(342, 548)  # landscape: taller box, centred vertically
    assert (x0, x1) == (0.0, 1.0)
    assert (y1 - y0) * 342 == pytest.approx(548)
    assert (y0 + y1) / 2 == pytest.approx(0.5)
    y0, x0, y1, x1 = crop.letterbox_box(548, 342)  # portrait
    assert (y0, y1) == (0.0, 1.0)
    assert (x1 - x0) * 342 == pytest.approx(548)
    assert crop.letterbox_box(100, 100) == (0.0, 0.0, 1.0, 1.0)


def test_crop_and_resize_matches_tensorflow_semantics():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for box in [crop.letterbox_box(37, 53), (0.1, 0.2, 0.7, 0.9), (-0.3, -0.1, 1.2, 0.8)]:
        ours = crop.crop_and_resize(image, box, 24)
        ref = tf_crop_and_resize_reference(image, box, 24)
        assert ours.dtype == np.int32 and ours.shape == (24, 24, 3)
        assert np.abs(ours - ref).max() < 1.0 + 1e-9  # truncation of float32 vs float64 math
        assert (ours == np.trunc(ref)).mean() > 0.98


def test_crop_and_resize_is_exact_on_the_pixel_grid_and_zero_outside():
    image = np.arange(16 * 16 * 3, dtype=np.int64).reshape(16, 16, 3) % 256
    image = image.astype(np.uint8)
    assert np.array_equal(crop.crop_and_resize(image, (0.0, 0.0, 1.0, 1.0), 16), image.astype(np.int32))
    wide = np.ascontiguousarray(image[:8])
    padded = crop.crop_and_resize(wide, crop.letterbox_box(8, 16), 16)  # an 8-row image padded to 16
    assert padded[0].sum() == 0 and padded[-1].sum() == 0  # pad rows
    assert padded[6:10].sum() > 0


def test_keypoints_to_image_maps_crop_coordinates_to_pixels():
    box = crop.letterbox_box(342, 548)
    kp = np.array([[0.5, 0.5, 0.9], [0.0, 0.0, 0.1], [1.0, 1.0, 0.5]] + [[0.5, 0.5, 0.5]] * 14, np.float32)
    px = crop.keypoints_to_image(kp, box, 342, 548)
    assert px.shape == (17, 3)
    assert px[0, :2] == pytest.approx([274.0, 171.0])  # centre of the square = centre of the image
    assert px[1, :2] == pytest.approx([0.0, 171.0 - 274.0])  # top-left of the square is above the image
    assert px[2, :2] == pytest.approx([548.0, 171.0 + 274.0])
    assert px[0, 2] == pytest.approx(0.9)


def test_pose_score_is_the_mean_of_scores_above_0_2():
    assert crop.pose_score(np.array([0.1, 0.2, 0.5, 0.7])) == pytest.approx(0.6)
    assert crop.pose_score(np.array([0.1, 0.2])) == 0.0


def body(scores=0.9):
    """Keypoints (x, y, score) of a 40 px wide torso: shoulders y=100, hips y=200, x 100..140; 640x480 image."""
    kp = np.zeros((17, 3))
    kp[:, 2] = 0.1
    kp[crop.LEFT_SHOULDER] = [140, 100, scores]
    kp[crop.RIGHT_SHOULDER] = [100, 100, scores]
    kp[crop.LEFT_HIP] = [140, 200, scores]
    kp[crop.RIGHT_HIP] = [100, 200, scores]
    kp[:5, :2] = [120, 80]  # head, low score
    kp[13:, :2] = [120, 400]
    return kp


def test_crop_region_centres_on_the_hips_with_tfjs_sizes():
    kp = body()
    box = crop.determine_crop_region(kp, 480, 640)
    # torso range: y 100, x 20 -> half = max(1.9*100, 1.9*20, 1.2*100, 1.2*20) = 190 (low-score keypoints ignored)
    assert box == pytest.approx(((200 - 190) / 480, (120 - 190) / 640, (200 + 190) / 480, (120 + 190) / 640))
    kp[15] = [120, 420, 0.8]  # a confident ankle 220 px below the hips: 1.2 * 220 = 264 wins
    box = crop.determine_crop_region(kp, 480, 640)
    assert (box[2] - box[0]) * 480 / 2 == pytest.approx(264)
    assert crop.box_side_fraction(box, 480, 640) == pytest.approx(528 / 640)


def test_crop_region_falls_back_to_the_full_image():
    kp = body()
    kp[crop.LEFT_HIP, 2] = kp[crop.RIGHT_HIP, 2] = 0.15  # torso not visible
    assert crop.determine_crop_region(kp, 480, 640) is None
    big = body()
    big[:, :2] = (big[:, :2] - [120, 150]) * 4 + [120, 150]  # a person larger than the image
    assert crop.determine_crop_region(big, 480, 640) is None


def test_person_bbox_pads_confident_keypoints_and_clips():
    kp = body()
    x, y, w, h = crop.person_bbox(kp, 480, 640, min_score=0.2, pad=0.1)
    assert (x, y, w, h) == pytest.approx((96, 90, 48, 120))  # shoulders/hips only, 10% per side
    kp[:, 0] -= 110  # partly left of the image
    x, y, w, h = crop.person_bbox(kp, 480, 640, min_score=0.2, pad=0.1)
    assert x == 0.0 and w == pytest.approx(34 - 0.0)
