"""MoveNet's CenterNet decoding, batched: synthetic head maps with known answers."""

import numpy as np
import pytest
import torch

from posepool_worker.backends.movenet.decode import DecodeConstants, decode_heads, read_cells

G = 48
CONST = DecodeConstants(
    grid=G, distance_bias=1.8, scale_y=1 / G, scale_x=1 / G, center_weight=np.ones((G, G), np.float32)
)


def decode(heat, center, reg, off, consts=CONST):
    return decode_heads(heat, center, read_cells(reg), read_cells(off), consts.center_weight_nchw(), consts).numpy()


def heads(batch, center_at, kpts_at, offset=(0.25, -0.5), regress_to=None):
    """Logit maps with a single confident peak per map; regression pointing at ``regress_to`` (default: peaks)."""
    heat = torch.full((batch, 17, G, G), -8.0)
    center = torch.full((batch, 1, G, G), -8.0)
    reg = torch.zeros(batch, 34, G, G)
    off = torch.zeros(batch, 34, G, G)
    for b in range(batch):
        cy, cx = center_at[b]
        center[b, 0, cy, cx] = 4.0
        for k in range(17):
            ky, kx = kpts_at[b][k]
            heat[b, k, ky, kx] = 2.0
            ty, tx = regress_to[b][k] if regress_to else (ky, kx)
            reg[b, 2 * k, cy, cx] = ty - cy
            reg[b, 2 * k + 1, cy, cx] = tx - cx
            off[b, 2 * k, ky, kx] = offset[0]
            off[b, 2 * k + 1, ky, kx] = offset[1]
    return heat, center, reg, off


def test_decodes_each_sample_of_a_batch_independently():
    rng = np.random.default_rng(1)
    centers = [(20, 24), (5, 40)]
    kpts = [[tuple(rng.integers(0, G, 2)) for _ in range(17)] for _ in range(2)]
    out = decode(*heads(2, centers, kpts))
    assert out.shape == (2, 17, 3)
    for b in range(2):
        for k in range(17):
            ky, kx = kpts[b][k]
            assert out[b, k, 0] == pytest.approx((ky + 0.25) / G, abs=1e-6)
            assert out[b, k, 1] == pytest.approx((kx - 0.5) / G, abs=1e-6)
            assert out[b, k, 2] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)
    single = decode(*heads(1, centers[1:], kpts[1:]))
    assert np.array_equal(single[0], out[1])


def test_keypoint_choice_is_weighted_by_distance_to_the_regressed_position():
    # Two equally strong peaks for every keypoint; the one near the regressed position wins.
    kpts = [[(10, 10)] * 17]
    heat, center, reg, off = heads(1, [(24, 24)], kpts, regress_to=[[(40, 40)] * 17])
    heat[0, :, 40, 38] = 2.0
    out = decode(heat, center, reg, off)
    assert out[0, :, 0] == pytest.approx(np.full(17, 40 / G), abs=1e-6)
    assert out[0, :, 1] == pytest.approx(np.full(17, 38 / G), abs=1e-6)


def test_center_weight_and_ties_pick_the_first_maximum():
    # Every keypoint has equal peaks at (5, 5) and (30, 30); centre logits are all equal. Regression from the
    # cell (12, 13) points at (30, 30), from every other cell at the cell itself.
    heat, center, reg, off = heads(1, [(0, 0)], [[(30, 30)] * 17])
    heat[0, :, 5, 5] = 2.0
    center[:] = 0.0
    reg[:] = 0.0
    reg[0, 0::2, 12, 13] = 30 - 12
    reg[0, 1::2, 12, 13] = 30 - 13
    off[0, 1::2, 5, 5] = -0.5
    off[0, 0::2, 5, 5] = 0.25
    # No weighting: the first maximum (0, 0) is the centre, regressed keypoints at (0, 0) -> peak (5, 5).
    out = decode(heat, center, reg, off)
    assert out[0, :, 0] == pytest.approx(np.full(17, (5 + 0.25) / G), abs=1e-6)
    # The centre weight map decides between equal centre logits: (12, 13) -> peak (30, 30).
    cw = np.ones((G, G), np.float32)
    cw[12, 13] = 2.0
    weighted = DecodeConstants(G, 1.8, 1 / G, 1 / G, cw)
    out = decode(heat, center, reg, off, weighted)
    assert out[0, :, 0] == pytest.approx(np.full(17, (30 + 0.25) / G), abs=1e-6)
    assert out[0, :, 1] == pytest.approx(np.full(17, (30 - 0.5) / G), abs=1e-6)
