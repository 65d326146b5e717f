"""The old design, rebuilt as the benchmark's baseline: one Python process per frame.

    python pose-service/bench/per_frame.py --model movenet-thunder < frame.jpg > result.json

Like the seed's per-frame script: the process starts, imports numpy/cv2/torch, loads the model, reads one
JPEG frame from stdin, poses it, writes one JSON result to stdout, and exits. Nothing survives between frames.
Thread settings are left at the libraries' defaults (the seed set none). The model's load is the worker's
load minus MoveNet's two warm-up inferences and its CPU-graph check (the seed had neither; leaving them out
favours the baseline).
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import bench_common as common  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="movenet-thunder")
    args = p.parse_args()

    t0 = time.perf_counter()
    numpy, cv2, torch, threads = common.set_threads(None)
    t1 = time.perf_counter()
    backend = common.load_backend(args.model, torch, threads, warm_up=False)
    t2 = time.perf_counter()
    image = common.decode_jpeg(sys.stdin.buffer.read(), cv2, numpy)
    persons = backend.detect([image], {"tracking": True, "vertices": False, "flipTest": False})[0]
    t3 = time.perf_counter()
    out = {
        "persons": persons,
        "timing": {
            "importMs": (t1 - t0) * 1000,
            "loadMs": (t2 - t1) * 1000,
            "poseMs": (t3 - t2) * 1000,
            "processMs": (t3 - STARTED) * 1000,
        },
    }
    sys.stdout.write(json.dumps(out, default=float))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
