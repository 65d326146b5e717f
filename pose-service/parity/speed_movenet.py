"""MoveNet speed, in process: ms/frame of the PyTorch backend (1 and 2 threads, batch 1 and 8) next to
TF.js-WASM on the same frames.

Usage (repo root):  /usr/bin/python3 pose-service/parity/speed_movenet.py [--repeats N] [--no-wasm] [MODEL...]

- "model": backend.infer() on the committed fixture inputs (int32 [B,S,S,3] -> keypoints): the network,
  decoding included, with no pre/post-processing; the same work TF.js's graph does, so the numbers compare.
- "detect": backend.detect() on decoded RGB frames (the fixture stills and frames): crop tracking from frame to
  frame, persons in pixels (tracking=True, the default).
- "wasm": `node pose-service/parity/movenet_tfjs.mjs speed MODEL` (tfjs-backend-wasm, one input at a time).
Each cell: the best of N repeats (least disturbed by other processes) and the median, in ms per frame.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from posepool_worker.backends.base import LoadContext  # noqa: E402
from posepool_worker.backends.movenet import MoveNetBackend  # noqa: E402

FIXTURES = HERE.parent / "tests" / "fixtures" / "movenet"
MODELS = ("movenet-thunder", "movenet-lightning")


def fixture_inputs(model: str) -> np.ndarray:
    size = json.loads((FIXTURES / f"index-{model}.json").read_text())["inputSize"]
    raw = gzip.decompress((FIXTURES / f"inputs-{model}.u8.gz").read_bytes())
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3).astype(np.int32)


def frames() -> list[np.ndarray]:
    out = []
    for name in ("messi5.jpg", "basketball1.jpg"):
        out.append(cv2.cvtColor(cv2.imread(str(HERE.parent / "tests" / "fixtures" / name)), cv2.COLOR_BGR2RGB))
    for video in sorted((REPO / "server" / "test" / "fixtures").glob("*.mp4")):
        cap = cv2.VideoCapture(str(video))
        ok, bgr = cap.read()
        if ok:
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
    return [np.ascontiguousarray(f) for f in out]


def timed(fn, batch: int, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (the TorchScript profiling runs happen on the first calls)
    fn()
    per_frame = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        per_frame.append((time.perf_counter() - t0) * 1000 / batch)
    return min(per_frame), statistics.median(per_frame)


def wasm_speed(model: str, repeats: int) -> tuple[float, float] | None:
    try:
        run = subprocess.run(
            ["node", str(HERE / "movenet_tfjs.mjs"), "speed", model, str(repeats)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"  (wasm skipped: {exc})", file=sys.stderr)
        return None
    r = json.loads(run.stdout.strip().splitlines()[-1])
    return r["msPerFrameMin"], r["msPerFrameMedian"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=list(MODELS))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-wasm", action="store_true")
    args = ap.parse_args()
    images = frames()
    rows = []
    for model in args.models:
        torch.set_num_threads(1)
        backend = MoveNetBackend.load(LoadContext(model, torch.device("cpu"), 1, HERE.parent / ".models", REPO))
        inputs = fixture_inputs(model)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for batch in (1, 8):
                x = np.concatenate([inputs] * (batch // len(inputs) + 1))[:batch]
                imgs = (images * (batch // len(images) + 1))[:batch]
                m = timed(lambda backend=backend, x=x: backend.infer(x), batch, args.repeats)
                d = timed(
                    lambda backend=backend, imgs=imgs: backend.detect(imgs, {"tracking": True}), batch, args.repeats
                )
                rows.append((model, f"pytorch {threads} thr", batch, m, d))
                print(
                    f"{model:18s} pytorch {threads} thr  batch {batch}:  model {m[0]:6.1f} (median {m[1]:6.1f})   "
                    f"detect {d[0]:6.1f} (median {d[1]:6.1f}) ms/frame",
                    flush=True,
                )
        if not args.no_wasm:
            w = wasm_speed(model, max(3, args.repeats // 2))
            if w:
                rows.append((model, "tfjs-wasm", 1, w, None))
                print(
                    f"{model:18s} tfjs-wasm (1 thread) batch 1:  model {w[0]:6.1f} (median {w[1]:6.1f}) ms/frame",
                    flush=True,
                )
    print(f"\nmachine: {os.cpu_count()} cores, torch {torch.__version__}; best (median) ms/frame")
    print("| model | runtime | batch | model ms/frame | detect ms/frame (tracking) |")
    print("| --- | --- | --- | --- | --- |")
    for model, runtime, batch, m, d in rows:
        dd = f"{d[0]:.1f} ({d[1]:.1f})" if d else "-"
        print(f"| {model} | {runtime} | {batch} | {m[0]:.1f} ({m[1]:.1f}) | {dd} |")


if __name__ == "__main__":
    main()
