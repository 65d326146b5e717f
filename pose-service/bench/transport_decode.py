"""The worker's side of each frame transport, per frame, in one process (no pipe): parse the detect message
and turn its payloads into RGB arrays with the worker's own code (posepool_worker.frames.decode_frame).

    python pose-service/bench/transport_decode.py --frames DIR --raw FILE --width W --height H
        [--batch 8] [--reps 5] [--out FILE]

Transports (POSE_TRANSPORT): ``jpeg`` (base64 JPEG in the message), ``rgb24`` (base64 raw pixels in the
message), ``file`` (a JPEG file path in the message) and ``rgb24-file`` (a path to a file of raw pixels,
width*height*3 bytes, read with np.fromfile, no decode). The files are in a normal temp folder
(tempfile.mkdtemp() default, like the server's per-request folder), not a RAM-backed one.
"""

from __future__ import annotations

import argparse
import base64
import json
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
    p.add_argument("--out")
    args = p.parse_args()

    common.set_threads(1)  # as a worker: one thread for numpy, cv2 and torch
    from posepool_worker.frames import decode_frame

    files = common.frame_files(args.frames)
    jpegs = [f.read_bytes() for f in files]
    size = args.width * args.height * 3
    raw_all = Path(args.raw).read_bytes()
    raws = [raw_all[i * size : (i + 1) * size] for i in range(len(jpegs))]

    file_dir = Path(tempfile.mkdtemp(prefix="posepool-bench-"))
    try:
        for i, jpeg in enumerate(jpegs):
            (file_dir / f"frame-{i:06d}.jpg").write_bytes(jpeg)
            (file_dir / f"frame-{i:06d}.rgb").write_bytes(raws[i])

        def payload(kind: str, i: int) -> dict:
            base = {"index": i, "width": args.width, "height": args.height}
            if kind == "jpeg":
                return {**base, "encoding": "jpeg", "data": base64.b64encode(jpegs[i]).decode("ascii")}
            if kind == "rgb24":
                return {**base, "encoding": "rgb24", "data": base64.b64encode(raws[i]).decode("ascii")}
            if kind == "file":
                return {**base, "encoding": "file", "path": str(file_dir / f"frame-{i:06d}.jpg")}
            if kind == "rgb24-file":
                return {**base, "encoding": "rgb24-file", "path": str(file_dir / f"frame-{i:06d}.rgb")}
            raise ValueError(kind)

        kinds = ["jpeg", "rgb24", "file", "rgb24-file"]
        results = {}
        n = len(jpegs)
        for kind in kinds:
            bodies = []
            for start in range(0, n, args.batch):
                frames = [payload(kind, i) for i in range(start, min(n, start + args.batch))]
                bodies.append(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "detect",
                            "params": {"requestId": "bench", "frames": frames},
                        }
                    ).encode("utf-8")
                )
            message_bytes = sum(len(b) for b in bodies) / n
            parse, decode = [], []
            for _ in range(args.reps + 1):  # the first repetition warms the page cache and allocator
                t_parse = t_decode = 0.0
                for body in bodies:
                    t0 = common.now()
                    msg = json.loads(body)
                    t1 = common.now()
                    for pl in msg["params"]["frames"]:
                        decode_frame(pl)
                    t_parse += t1 - t0
                    t_decode += common.now() - t1
                parse.append(t_parse * 1000 / n)
                decode.append(t_decode * 1000 / n)
            results[kind] = {"messageBytesPerFrame": message_bytes, "parseMs": parse[1:], "decodeMs": decode[1:]}
    finally:
        shutil.rmtree(file_dir, ignore_errors=True)

    common.write_json(args.out, {"frames": len(jpegs), "width": args.width, "height": args.height, "kinds": results})


if __name__ == "__main__":
    main()
