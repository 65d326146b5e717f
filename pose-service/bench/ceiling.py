"""The ceiling: the model called in a loop inside one Python process, frames already decoded, no IPC.

    python pose-service/bench/ceiling.py --model movenet-thunder --threads 2 --frames DIR [--batch 8]
        [--reps 5] [--modes tracking,single] [--limit N] [--barrier DIR] [--out FILE]

Threads are applied exactly as a worker applies them. Frames are the JPEGs the server's ffmpeg makes, decoded
once up front (the decode is timed separately). Each repetition is one pass over all frames in batches of
--batch, through the same ``backend.detect`` a worker calls: mode ``tracking`` as the server calls it for
videos (MoveNet: a second pass on a crop where the person is small), mode ``single`` with tracking off (one
inference per frame: the like-for-like comparison with TF.js). One untimed pass warms up first. --limit
takes only the first frames (the bench's --quick mode).

With --barrier, several copies started together wait for each other after loading and warm-up (each writes
``ready.<pid>`` into DIR and waits for ``DIR/go``), so their timed passes overlap: N workers' true ceiling on
the shared cores.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import bench_common as common


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--frames", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--modes", default="tracking,single")
    p.add_argument("--limit", type=int, default=0, help="use only the first N frames (0: all)")
    p.add_argument("--barrier")
    p.add_argument("--out")
    args = p.parse_args()

    numpy, cv2, torch, threads = common.set_threads(args.threads)
    t0 = common.now()
    backend = common.load_backend(args.model, torch, threads)
    load_ms = (common.now() - t0) * 1000

    files = common.frame_files(args.frames)
    raws = [f.read_bytes() for f in (files[: args.limit] if args.limit > 0 else files)]
    t0 = common.now()
    images = [common.decode_jpeg(raw, cv2, numpy) for raw in raws]
    decode_ms = (common.now() - t0) * 1000 / len(images)

    inferences = common.count_model_rows(backend)

    batches = [images[i : i + args.batch] for i in range(0, len(images), args.batch)]
    modes = [m for m in args.modes.split(",") if m]

    posed = {"frames": 0}

    def one_pass(tracking: bool) -> tuple[float, float]:
        """(wall seconds, this process's CPU seconds: all its threads, user + system)."""
        start, cpu = common.now(), time.process_time()
        for batch in batches:
            out = backend.detect(batch, {"tracking": tracking, "vertices": False, "flipTest": False})
            posed["frames"] += sum(1 for persons in out if isinstance(persons, list) and persons)
        return common.now() - start, time.process_time() - cpu

    one_pass("tracking" in modes)  # warm-up: the batch shapes of both passes

    if args.barrier:
        Path(args.barrier, f"ready.{os.getpid()}").write_text("")
        go = Path(args.barrier, "go")
        deadline = time.monotonic() + 600
        while not go.exists():
            if time.monotonic() > deadline:
                raise SystemExit("barrier: no go within 600 s")
            time.sleep(0.01)

    results = {}
    for mode in modes:
        inferences["rows"] = 0
        posed["frames"] = 0
        fps, cpu_ms, cores = [], [], []
        for _ in range(args.reps):
            seconds, cpu = one_pass(mode == "tracking")
            fps.append(len(images) / seconds)
            cpu_ms.append(cpu * 1000 / len(images))
            cores.append(cpu / seconds)
        results[mode] = {
            "fps": fps,
            "cpuMsPerFrame": cpu_ms,
            "coresUsed": cores,
            "inferencesPerFrame": inferences["rows"] / (args.reps * len(images)),
            "posedPerFrame": posed["frames"] / (args.reps * len(images)),
        }

    common.write_json(
        args.out,
        {
            "model": args.model,
            "threads": threads,
            "torchThreads": torch.get_num_threads(),
            "batch": args.batch,
            "frames": len(images),
            "size": [int(images[0].shape[1]), int(images[0].shape[0])],
            "loadMs": load_ms,
            "decodeMsPerFrame": decode_ms,
            "modes": results,
            "torch": torch.__version__,
        },
    )


if __name__ == "__main__":
    main()
