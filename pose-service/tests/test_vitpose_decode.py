"""ViTPose decoding: argmax + DARK (UDP form) recovers sub-pixel peaks; flip-back; back to image pixels."""

import cv2
import numpy as np

from posepool_worker.backends.vitpose import decode

HW = (64, 48)


def gaussian(cx, cy, sigma=2.0, hw=HW):
    ys, xs = np.mgrid[0 : hw[0], 0 : hw[1]]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_dark_udp_recovers_subpixel_peaks_better_than_argmax():
    truth = [(20.3, 30.7), (5.8, 10.2), (40.45, 55.6), (23.5, 31.5)]
    hm = np.stack([gaussian(x, y) for x, y in truth])[None]
    preds, maxvals = decode.max_preds(hm)
    refined = decode.dark_udp(preds.copy(), hm)
    truth = np.array(truth)
    assert np.abs(refined[0] - truth).max() < 0.06
    assert np.abs(refined[0] - truth).max() < np.abs(preds[0] - truth).max()
    assert np.all(maxvals > 0.8)


def dark_reference(hm, x, y, kernel=11):
    """post_dark_udp for one heatmap, with explicit finite differences (independent of the vectorised code)."""
    m = cv2.GaussianBlur(hm.copy(), (kernel, kernel), 0)
    m = np.log(np.clip(m, 0.001, 50))
    m = np.pad(m, 1, mode="edge")
    px, py = int(x) + 1, int(y) + 1
    f = lambda dx, dy: float(m[py + dy, px + dx])  # noqa: E731
    g = np.array([0.5 * (f(1, 0) - f(-1, 0)), 0.5 * (f(0, 1) - f(0, -1))])
    dxx = f(1, 0) - 2 * f(0, 0) + f(-1, 0)
    dyy = f(0, 1) - 2 * f(0, 0) + f(0, -1)
    dxy = 0.5 * (f(1, 1) - f(1, 0) - f(0, 1) + 2 * f(0, 0) - f(-1, 0) - f(0, -1) + f(-1, -1))
    hess = np.array([[dxx, dxy], [dxy, dyy]]) + np.finfo(np.float32).eps * np.eye(2)
    return np.array([x, y]) - np.linalg.solve(hess, g)


def test_dark_udp_matches_a_per_keypoint_reference_on_noisy_maps():
    rng = np.random.default_rng(1)
    hm = (rng.random((3, 17, *HW)) * 0.2).astype(np.float32)
    for n in range(3):
        for k in range(17):
            hm[n, k] += gaussian(rng.uniform(3, 44), rng.uniform(3, 60), sigma=rng.uniform(1.5, 3))
    original = hm.copy()
    preds, _ = decode.max_preds(hm)
    refined = decode.dark_udp(preds.copy(), hm)
    assert np.array_equal(hm, original)  # input untouched
    for n in range(3):
        for k in range(17):
            ref = dark_reference(hm[n, k], *preds[n, k])
            assert np.allclose(refined[n, k], ref, atol=2e-3), (n, k)


def test_non_positive_heatmaps_do_not_crash_and_score_zero():
    hm = np.zeros((1, 17, *HW), np.float32)
    out = decode.decode_heatmaps(hm, np.array([[100.0, 100.0]]), np.array([[96.0, 128.0]]))
    assert np.all(np.isfinite(out)) and np.all(out[..., 2] == 0)


def test_flip_back_swaps_left_right_and_mirrors():
    flipped = np.zeros((1, 17, *HW), np.float32)
    flipped[0, 1] = gaussian(10, 20)  # "left_eye" found at x=10 in the mirrored crop
    flipped[0, 0] = gaussian(24, 5)  # nose has no partner
    back = decode.flip_back(flipped)
    y, x = np.unravel_index(np.argmax(back[0, 2]), HW)  # -> right_eye at the mirrored column
    assert (x, y) == (47 - 10, 20) and back[0, 1].max() == 0
    y, x = np.unravel_index(np.argmax(back[0, 0]), HW)
    assert (x, y) == (47 - 24, 5)
    assert decode.flip_permutation()[:7] == [0, 2, 1, 4, 3, 6, 5]


def test_heatmap_centre_maps_to_the_box_centre_and_corners_to_its_edges():
    hm = np.stack([gaussian(23.5, 31.5), gaussian(0.0, 0.0), gaussian(47.0, 63.0)])[None]
    centers, sizes = np.array([[300.0, 200.0]]), np.array([[150.0, 200.0]])
    out = decode.decode_heatmaps(hm, centers, sizes)
    assert np.allclose(out[0, 0, :2], [300, 200], atol=0.05 * 150 / 47)
    assert np.allclose(out[0, 1, :2], [225, 100], atol=0.6 * 150 / 47)  # corner peaks: DARK only approximate
    assert np.allclose(out[0, 2, :2], [375, 300], atol=0.6 * 150 / 47)
    assert np.allclose(out[0, :, 2], hm[0].reshape(3, -1).max(axis=1))  # score = heatmap maximum
