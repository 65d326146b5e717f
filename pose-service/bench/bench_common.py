"""Shared set-up for the benchmark's Python scripts (not part of the worker package, not run by pytest).

Each script applies the thread settings exactly as a worker does (posepool_worker.runtime: env vars before
torch is imported, then torch/cv2 thread counts), loads a backend through the same registry, and reads the
frames the server would send (JPEG files written by scripts/bench with the server's own ffmpeg arguments).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SERVICE_DIR = BENCH_DIR.parent  # pose-service/
REPO_ROOT = SERVICE_DIR.parent
if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))


def set_threads(threads: int | None):
    """As the worker's bootstrap does; returns (numpy, cv2, torch, threads in effect)."""
    from posepool_worker import runtime

    runtime.set_thread_env(threads)
    import cv2
    import numpy
    import torch

    in_effect = runtime.apply_threads(threads, torch, cv2)
    return numpy, cv2, torch, in_effect


def load_backend(model: str, torch, threads: int, warm_up: bool = True):
    """The backend as a worker loads it (device cpu). warm_up=False skips MoveNet's two warm-up inferences and
    its load-time check of the CPU graph against the eager trunk (~1 s for Thunder on torch 1.13): the seed
    had neither, so the per-frame baseline is not charged for them."""
    from posepool_worker.backends import backend_class
    from posepool_worker.backends.base import LoadContext

    cls = backend_class(model)
    if not warm_up and hasattr(cls, "warm_up"):  # MoveNet's: the only backend with a warm-up and a graph check
        from posepool_worker.backends.movenet import network

        cls.warm_up = lambda self: None  # this process only: the baseline's load is not charged for a warm-up
        network.trunk_disagreement = lambda *args: 0.0  # this process only: no graph check either
    ctx = LoadContext(
        model=model,
        device=torch.device("cpu"),
        threads=threads,
        models_dir=Path(os.environ.get("POSE_MODELS_DIR") or SERVICE_DIR / ".models"),
        repo_root=REPO_ROOT,
    )
    return cls.load(ctx)


def count_model_rows(backend) -> dict:
    """Counts the rows (one per image) a backend's networks run, without changing its work: ``{"rows": n}``, reset
    by the caller. MoveNet: its ``infer`` (1 or 2 per frame); BlazePose: the detector's and the landmark model's
    rows together. Wraps the networks once per backend: called again, it returns the same counter, at 0."""
    counter = getattr(backend, "_posepool_row_counter", None)
    if counter is not None:
        counter["rows"] = 0
        return counter
    counter = {"rows": 0}
    backend._posepool_row_counter = counter

    def counting(fn):
        def counted(inputs):
            counter["rows"] += len(inputs)
            return fn(inputs)

        return counted

    if hasattr(backend, "infer"):
        backend.infer = counting(backend.infer)
    if hasattr(backend, "nets"):
        backend.nets.detect = counting(backend.nets.detect)
        backend.nets.landmark = counting(backend.nets.landmark)
    return counter


def frame_files(frames_dir: str) -> list[Path]:
    files = sorted(Path(frames_dir).glob("frame-*.jpg"))
    if not files:
        raise SystemExit(f"no frame-*.jpg in {frames_dir}")
    return files


def decode_jpeg(raw: bytes, cv2, numpy):
    """JPEG bytes -> HxWx3 uint8 RGB, as posepool_worker.frames does for the jpeg and file transports."""
    bgr = cv2.imdecode(numpy.frombuffer(raw, dtype=numpy.uint8), cv2.IMREAD_COLOR)
    return numpy.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def write_json(path: str | None, data: dict) -> None:
    text = json.dumps(data)
    if path:
        Path(path).write_text(text)
    else:
        print(text)


def now() -> float:
    return time.perf_counter()
