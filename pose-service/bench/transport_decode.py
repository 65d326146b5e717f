"""The worker's side of each frame transport, per frame, in one process (no pipe): parse the detect message
and turn its payloads into RGB arrays with the worker's own code (posepool_worker.frames.decode_frame).

    python pose-service/bench/transport_decode.py --frames DIR --raw FILE --width W --height H
        [--batch 8] [--reps 5] [--shm-dir /dev/shm] [--out FILE]

Transports: ``jpeg`` (base64 JPEG in the message), ``rgb24`` (base64 raw pixels in the message), ``file`` (a
JPEG file path in the message), and ``shm-raw``, a prototype the protocol does not have: raw pixels in a file
on a RAM-backed folder (/dev/shm), read with one copy (what a shared-memory transport would cost at least).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import tempfile
from pathlib import Path

import bench_common as common


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", required=True)
    p.add_argument("--raw", required=True, help="all frames as rgb24, back to back")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--shm-dir", default="/dev/shm")
    p.add_argument("--out")
    args = p.parse_args()

    numpy, cv2, torch, _ = common.set_threads(1)
    from posepool_worker.frames import decode_frame

    files = common.frame_files(args.frames)
    jpegs = [f.read_bytes() for f in files]
    size = args.width * args.height * 3
    raw_all = Path(args.raw).read_bytes()
    raws = [raw_all[i * size:(i + 1) * size] for i in range(len(jpegs))]

    file_dir = Path(tempfile.mkdtemp(prefix="posepool-bench-"))
    shm_dir = Path(tempfile.mkdtemp(prefix="posepool-bench-", dir=args.shm_dir)) if os.path.isdir(args.shm_dir) else None
    try:
        for i, jpeg in enumerate(jpegs):
            (file_dir / f"frame-{i:06d}.jpg").write_bytes(jpeg)
            if shm_dir:
                (shm_dir / f"frame-{i:06d}.rgb").write_bytes(raws[i])

        def payload(kind: str, i: int) -> dict:
            base = {"index": i, "width": args.width, "height": args.height}
            if kind == "jpeg":
                return {**base, "encoding": "jpeg", "data": base64.b64encode(jpegs[i]).decode("ascii")}
            if kind == "rgb24":
                return {**base, "encoding": "rgb24", "data": base64.b64encode(raws[i]).decode("ascii")}
            if kind == "file":
                return {**base, "encoding": "file", "path": str(file_dir / f"frame-{i:06d}.jpg")}
            return {**base, "encoding": "shm-raw", "path": str(shm_dir / f"frame-{i:06d}.rgb")}

        def to_image(pl: dict):
            if pl["encoding"] == "shm-raw":
                return numpy.fromfile(pl["path"], dtype=numpy.uint8).reshape(pl["height"], pl["width"], 3)
            return decode_frame(pl)

        kinds = ["jpeg", "rgb24", "file"] + (["shm-raw"] if shm_dir else [])
        results = {}
        n = len(jpegs)
        for kind in kinds:
            bodies = []
            for start in range(0, n, args.batch):
                frames = [payload(kind, i) for i in range(start, min(n, start + args.batch))]
                bodies.append(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "detect",
                                          "params": {"requestId": "bench", "frames": frames}}).encode("utf-8"))
            message_bytes = sum(len(b) for b in bodies) / n
            parse, decode = [], []
            for _ in range(args.reps + 1):  # the first repetition warms the page cache and allocator
                t_parse = t_decode = 0.0
                for body in bodies:
                    t0 = common.now()
                    msg = json.loads(body)
                    t1 = common.now()
                    for pl in msg["params"]["frames"]:
                        to_image(pl)
                    t_parse += t1 - t0
                    t_decode += common.now() - t1
                parse.append(t_parse * 1000 / n)
                decode.append(t_decode * 1000 / n)
            results[kind] = {"messageBytesPerFrame": message_bytes, "parseMs": parse[1:], "decodeMs": decode[1:]}
    finally:
        shutil.rmtree(file_dir, ignore_errors=True)
        if shm_dir:
            shutil.rmtree(shm_dir, ignore_errors=True)

    common.write_json(args.out, {"frames": len(jpegs), "width": args.width, "height": args.height, "kinds": results})


if __name__ == "__main__":
    main()
