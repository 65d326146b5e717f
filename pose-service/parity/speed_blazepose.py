"""BlazePose speed, in process: ms per frame of the PyTorch backend, by stage and as served, 1 and 2 threads.

Usage (repo root):  PYTHON pose-service/parity/speed_blazepose.py [--repeats N] [--threads 1,2] [--eager] [MODEL...]

- "detector" / "landmarks": one network call (batch 1) on a real crop, the oneDNN graph a worker runs
  (``--eager``: the eager fx module too, for comparison).
- "crop": the detector's letterboxed input plus the landmark model's rotated crop (numpy, per frame).
- "tracked": backend.detect() over the frames as one video batch (tracking: the detector on the first frame,
  then each frame in the ROI from the one before): what a worker does per frame for a video.
- "single": backend.detect() with tracking off (detector and landmarks on every frame).
Frames: the fixture stills and 8 consecutive frames of messi-pan.mp4 (read with cv2). Each cell: the best of N
repeats (least disturbed by other processes) and the median, in ms per frame; frames/s = 1000 / best.
TF.js-WASM's speed for the same pipeline: `node pose-service/parity/blazepose_tfjs.mjs speed DIR` on a folder
written by blazepose_parity_helper.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from posepool_worker import runtime  # noqa: E402

MODELS = ("blazepose-lite", "blazepose-full", "blazepose-heavy")


def frames(cv2, np) -> list:
    out = []
    for name in ("messi5.jpg", "basketball1.jpg"):
        out.append(cv2.cvtColor(cv2.imread(str(HERE.parent / "tests" / "fixtures" / name)), cv2.COLOR_BGR2RGB))
    cap = cv2.VideoCapture(str(REPO / "server" / "test" / "fixtures" / "messi-pan.mp4"))
    video = []
    while len(video) < 38:
        ok, bgr = cap.read()
        if not ok:
            break
        video.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return [np.ascontiguousarray(f) for f in out], [np.ascontiguousarray(f) for f in video[30:38]]


def timed(fn, per: int, repeats: int) -> tuple[float, float]:
    fn()
    fn()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000 / per)
    return min(ms), statistics.median(ms)


def measure(model: str, threads: int, stills: list, video: list, repeats: int, with_eager: bool) -> dict:
    import torch

    from posepool_worker.backends.base import LoadContext
    from posepool_worker.backends.blazepose import BlazePoseBackend, roi
    from posepool_worker.backends.blazepose.network import BlazePoseNets
    from posepool_worker.backends.movenet.backend import model_dir
    from posepool_worker.backends.movenet.tfjs_graph import load_graph_model

    backend = BlazePoseBackend.load(LoadContext(model, torch.device("cpu"), threads, HERE.parent / ".models", REPO))
    img = stills[0]
    det_in, _ = roi.detector_input(img)
    [pose] = backend.pose_afresh([img])
    assert pose is not None
    lm_in, _ = roi.landmark_input(img, pose.roi)
    row: dict = {"model": model, "threads": threads, "torch": torch.__version__}
    row["detector"] = timed(lambda: backend.nets.detect(det_in[None]), 1, repeats)
    row["landmarks"] = timed(lambda: backend.nets.landmark(lm_in[None]), 1, repeats)
    if with_eager:
        folder = model_dir(REPO)
        eager = BlazePoseNets(
            load_graph_model(folder / "blazepose-detector.json"),
            load_graph_model(folder / f"{model}.json"),
            torch.device("cpu"),
        )
        row["detector eager"] = timed(lambda: eager.detect(det_in[None]), 1, repeats)
        row["landmarks eager"] = timed(lambda: eager.landmark(lm_in[None]), 1, repeats)
    row["crop"] = timed(lambda: (roi.detector_input(img), roi.landmark_input(img, pose.roi)), 1, repeats)
    n = len(video)
    row["tracked"] = timed(lambda: backend.detect(video, {"tracking": True, "indices": list(range(n))}), n, repeats)
    row["single"] = timed(lambda: backend.detect(video, {"tracking": False}), n, repeats)
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--eager", action="store_true", help="also time the eager fx modules")
    p.add_argument("models", nargs="*", default=list(MODELS))
    args = p.parse_args()

    import cv2
    import numpy as np
    import torch

    stills, video = frames(cv2, np)
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        runtime.apply_threads(threads, torch, cv2)
        for model in args.models:
            row = measure(model, threads, stills, video, args.repeats, args.eager)
            rows.append(row)
            cells = ", ".join(f"{k} {v[0]:.1f} ({v[1]:.1f})" for k, v in row.items() if isinstance(v, tuple))
            print(
                f"{model}, {threads} thread(s): {cells} ms; tracked {1000 / row['tracked'][0]:.1f} frames/s", flush=True
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
