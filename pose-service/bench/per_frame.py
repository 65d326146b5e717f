"""The benchmark's baseline: one Python process per frame, the design posepool's warm workers replace.

    python pose-service/bench/per_frame.py --model movenet-thunder < frame.jpg > result.json

The process starts, imports numpy/cv2/torch, loads the model, reads one JPEG frame from stdin, poses it,
writes one JSON result to stdout, and exits: nothing survives between frames. As in that design, thread
settings stay at the libraries' defaults and the load has neither MoveNet's two warm-up inferences nor its
CPU-graph check (leaving them out favours the baseline).
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
