"""Precision: the POSE_PRECISION choices, and bf16 autocast vs fp32 on CPU (torch 1.13 CPU autocast is bf16).

The models here have random weights, so the check is numerical drift of the network outputs, not accuracy on
a benchmark: ViTPose heatmaps stay within 5% of fp32 (relative to their maximum) with the same peak cell
wherever the peak is clear, and HMR2's rotations, betas and camera within 0.05. Accuracy on real weights is
for a GPU session (bench/gpu_speed.py prints the fp16/bf16-vs-fp32 drift on real-sized models).
"""

import numpy as np
import pytest
import torch

from posepool_worker.backends.hmr2.config import TINY as HMR2_TINY
from posepool_worker.backends.hmr2.network import HMR2Net
from posepool_worker.backends.topdown.precision import autocast, resolve_precision
from posepool_worker.backends.vitpose.config import ViTConfig, ViTPoseConfig
from posepool_worker.backends.vitpose.decode import max_preds
from posepool_worker.backends.vitpose.network import ViTPoseNet
from posepool_worker.errors import StartupError
from test_topdown_fakes import random_state

CPU = torch.device("cpu")


def test_precision_choices(monkeypatch):
    monkeypatch.delenv("POSE_PRECISION", raising=False)
    assert resolve_precision(CPU) == "fp32"
    assert resolve_precision(torch.device("cuda")) == "fp16"  # no GPU needed to decide
    assert resolve_precision(CPU, "bf16") == "bf16"
    for bad in ("fp16", "int8"):
        with pytest.raises(StartupError) as err:
            resolve_precision(CPU, bad)
        assert err.value.type == "BadConfiguration" and "POSE_PRECISION" in err.value.message
    monkeypatch.setenv("POSE_PRECISION", "BF16")
    assert resolve_precision(CPU) == "bf16"


def seeded(net, seed):
    net.load_state_dict(random_state({k: v.shape for k, v in net.state_dict().items()}, seed))
    return net.eval()


def clear_peaks(hm: np.ndarray, perturbation: np.ndarray, radius: int = 3) -> np.ndarray:
    """(N, K) mask of heatmaps whose maximum beats every value farther than ``radius`` cells away by more than
    twice the fp32-vs-bf16 perturbation: there the argmax cannot jump to another mode."""
    n, k, h, w = hm.shape
    ys, xs = np.mgrid[0:h, 0:w]
    out = np.zeros((n, k), bool)
    for i in range(n):
        for j in range(k):
            y, x = np.unravel_index(np.argmax(hm[i, j]), (h, w))
            far = (np.abs(ys - y) > radius) | (np.abs(xs - x) > radius)
            out[i, j] = hm[i, j].max() - hm[i, j][far].max() > 2 * perturbation[i, j]
    return out


def test_bf16_autocast_stays_close_to_fp32_for_vitpose():
    cfg = ViTPoseConfig(ViTConfig(192, 2, 6), deconv_channels=32)
    net = seeded(ViTPoseNet(cfg), 0)
    x = torch.randn(2, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = net(x)
        with autocast(CPU, "bf16"):
            low = net(x)
    assert low.dtype == torch.bfloat16  # autocast really ran the convolutions in bf16
    low = low.float()
    rel = ((low - ref).abs().max() / ref.abs().max()).item()
    assert rel < 0.05, rel
    # where the fp32 heatmap has a clear peak, bf16 finds the same peak cell (the DARK refinement then runs
    # in fp32 on both; on random weights its Newton step is not meaningful, on trained Gaussian-like maps it is)
    hm_ref, hm_low = ref.numpy(), low.numpy()
    clear = clear_peaks(hm_ref, np.abs(hm_low - hm_ref).max(axis=(2, 3)))
    (p_ref, _), (p_low, _) = max_preds(hm_ref), max_preds(hm_low)
    assert clear.sum() >= 3 and np.array_equal(p_ref[clear], p_low[clear]), clear.sum()


def test_bf16_autocast_stays_close_to_fp32_for_hmr2():
    net = seeded(HMR2Net(HMR2_TINY), 1)
    x = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        rot, betas, cam = net(x)
        with autocast(CPU, "bf16"):
            rot_l, betas_l, cam_l = net(x)
    assert rot_l.dtype == torch.float32  # the head hands back float32 for SMPL and the camera maths
    assert (rot_l - rot).abs().max() < 0.05
    assert (betas_l - betas).abs().max() < 0.05 and (cam_l - cam).abs().max() < 0.05
