"""GPU speed of the top-down models with random weights: frames/s by batch size, peak GPU memory, and the
fp16/bf16-vs-fp32 drift. No checkpoint, SMPL file or network needed (random weights, random SMPL arrays of the
real sizes), so a fresh GPU machine can run it right after `npm run setup`.

    cd pose-service && python bench/gpu_speed.py                       # ViTPose-B and HMR2 on cuda
    python bench/gpu_speed.py --models vitpose-b --batch-sizes 1,16,64 --precisions fp32,fp16,bf16
    python bench/gpu_speed.py --device cpu --tiny --batch-sizes 1,2 --iters 1   # smoke test without a GPU

Per model, precision and batch size it prints one row:
  net fps     frames/s of the network alone (crops already on the device; CUDA-synchronised timing),
  e2e fps     frames/s of backend.detect() on 640x480 frames (crop, normalise, network, decode / SMPL + cameras;
              full-frame boxes: MoveNet's own cost is measured by the MoveNet bench, add it for the default setup),
  peak MiB    torch.cuda.max_memory_allocated during the e2e pass (weights included),
  drift       vs fp32 on the same inputs: ViTPose max|heatmap diff| / max|heatmap|; HMR2 max|rotation diff|.
A batch size that runs out of memory prints OOM and the next one is tried.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posepool_worker.backends.hmr2 import config as hmr2_config
from posepool_worker.backends.hmr2.backend import HMR2Backend
from posepool_worker.backends.hmr2.network import HMR2Net
from posepool_worker.backends.hmr2.smpl import SMPL
from posepool_worker.backends.topdown.boxes import PersonBoxSource
from posepool_worker.backends.topdown.checkpoints import is_cuda_oom
from posepool_worker.backends.topdown.precision import autocast
from posepool_worker.backends.vitpose import config as vp_config
from posepool_worker.backends.vitpose.backend import ViTPoseBackend
from posepool_worker.backends.vitpose.network import ViTPoseNet

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def random_smpl(nv: int = 6890) -> SMPL:
    rng = np.random.default_rng(0)
    weights = rng.random((nv, 24))
    data = {
        "v_template": rng.normal(0, 0.3, (nv, 3)),
        "shapedirs": rng.normal(0, 0.01, (nv, 3, 10)),
        "posedirs": rng.normal(0, 0.001, (nv, 3, 207)),
        "J_regressor": rng.random((24, nv)) / nv,
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[0, *SMPL_PARENTS[1:]], list(range(24))]),
        "f": np.zeros((1, 3), np.int64),
    }
    return SMPL(data, rng.random((19, nv)) / nv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, iters: int) -> float:
    fn()  # warm-up (cuDNN autotune, allocator)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / iters


def build(model: str, device: torch.device, precision: str, tiny: bool):
    full = PersonBoxSource(None, "full-frame")
    if model.startswith("vitpose"):
        cfg = vp_config.TINY if tiny else vp_config.SIZES[model]
        net = ViTPoseNet(cfg, device=device).eval()
        return ViTPoseBackend(model, cfg, net, device, precision, full), (3, 256, 192)
    cfg = hmr2_config.TINY if tiny else hmr2_config.HMR2
    net = HMR2Net(cfg, device=device).eval()
    with torch.no_grad():
        net.smpl_head.init_cam.copy_(torch.tensor([[0.9, 0.0, 0.0]]))
    return HMR2Backend(cfg, net, random_smpl().to(device), device, precision, full), (3, 256, 256)


def net_outputs(backend, x):
    with torch.inference_mode(), autocast(backend.device, backend.precision):
        out = backend.net(x)
    return out.float() if torch.is_tensor(out) else out[0].float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="vitpose-b,hmr2")
    ap.add_argument("--batch-sizes", default="1,8,16,32,64")
    ap.add_argument("--precisions", default="fp32,fp16" if torch.cuda.is_available() else "fp32,bf16")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tiny", action="store_true", help="tiny test architectures (CPU smoke test)")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: use --device cpu (with --tiny for a quick smoke test)")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"# torch {torch.__version__}, device {gpu}, iters {args.iters}, random weights{' (tiny)' if args.tiny else ''}"
    )
    print(f"{'model':10} {'prec':5} {'batch':>5} {'net fps':>9} {'e2e fps':>9} {'peak MiB':>9} {'drift':>9}")
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for model in args.models.split(","):
        ref_backend = None
        for precision in args.precisions.split(","):
            backend, chw = build(model, device, precision, args.tiny)
            if ref_backend is None:
                ref_backend = backend if precision == "fp32" else build(model, device, "fp32", args.tiny)[0]
                ref_backend.net.load_state_dict(backend.net.state_dict())
            else:
                backend.net.load_state_dict(ref_backend.net.state_dict())
            for bs in (int(b) for b in args.batch_sizes.split(",")):
                try:
                    x = torch.randn(bs, *chw, device=device)
                    net_s = timed(lambda backend=backend, x=x: net_outputs(backend, x), device, args.iters)
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    frames = [frame] * bs
                    e2e_s = timed(lambda backend=backend, frames=frames: backend.detect(frames, {}), device, args.iters)
                    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                    a, b = net_outputs(backend, x), net_outputs(ref_backend, x)
                    drift = (
                        ((a - b).abs().max() / b.abs().max()).item()
                        if model.startswith("vitpose")
                        else (a - b).abs().max().item()
                    )
                    print(
                        f"{model:10} {precision:5} {bs:5d} {bs / net_s:9.1f} {bs / e2e_s:9.1f} "
                        f"{peak:9.0f} {drift:9.2e}",
                        flush=True,
                    )
                except Exception as exc:
                    if not is_cuda_oom(exc):
                        raise
                    print(f"{model:10} {precision:5} {bs:5d} {'OOM':>9}", flush=True)
                    torch.cuda.empty_cache()
            del backend
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
