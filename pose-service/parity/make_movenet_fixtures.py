"""Regenerate pose-service/tests/fixtures/movenet/ (run from the repo root with /usr/bin/python3; needs ffmpeg).

For each model it writes the exact int32 inputs (stored as uint8, gzip) the parity tests feed to both
implementations: letterboxed still images and video frames, plus the tracking pass-2 crops derived from
them, with an index. Then run `node pose-service/parity/movenet_tfjs.mjs reference MODEL` for both models
to write the TF.js outputs (tfjs-MODEL.json) that test_movenet_parity.py compares against.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from posepool_worker.backends.movenet import crop  # noqa: E402
from posepool_worker.backends.movenet.backend import MAX_CROP_FRACTION, MIN_POSE_SCORE, model_dir  # noqa: E402
from posepool_worker.backends.movenet.network import MoveNet  # noqa: E402
from posepool_worker.backends.movenet.tfjs_graph import load_graph_model  # noqa: E402

OUT = HERE.parent / "tests" / "fixtures" / "movenet"
SOURCES = [  # (name, path relative to the repo, frame index or None for a still image)
    ("messi5", "pose-service/tests/fixtures/messi5.jpg", None),
    ("basketball1", "pose-service/tests/fixtures/basketball1.jpg", None),
    ("messi-pan#45", "server/test/fixtures/messi-pan.mp4", 45),
    ("vtest-3s#20", "server/test/fixtures/vtest-3s.mp4", 20),
    ("messi-rot90#15", "server/test/fixtures/messi-rot90.mp4", 15),
]


def read_frame(path: Path, index: int | None) -> np.ndarray:
    """RGB uint8. Video frames are decoded by ffmpeg (rotation metadata applied), as the server does."""
    if index is None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        png = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(path),
                "-vf",
                f"select=eq(n\\,{index})",
                "-vframes",
                "1",
                "-f",
                "image2pipe",
                "-vcodec",
                "png",
                "-",
            ],
            check=True,
            capture_output=True,
        ).stdout
        bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"could not read {path} frame {index}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    images = {name: read_frame(REPO / rel, idx) for name, rel, idx in SOURCES}
    for model in ("movenet-thunder", "movenet-lightning"):
        net = MoveNet(load_graph_model(model_dir(REPO) / f"{model}.json"))
        size = net.input_size
        entries, inputs = [], []
        for name, rel, idx in SOURCES:
            img = images[name]
            h, w = img.shape[:2]
            box = crop.letterbox_box(h, w)
            x = crop.crop_and_resize(img, box, size)
            entries.append(
                {"name": name, "source": rel, "frame": idx, "kind": "letterbox", "box": box, "width": w, "height": h}
            )
            inputs.append(x)
            with torch.inference_mode():
                out = net(torch.from_numpy(x)[None]).numpy()[0]
            kp = crop.keypoints_to_image(out, box, h, w)
            if crop.pose_score(kp[:, 2]) < MIN_POSE_SCORE:
                continue
            region = crop.determine_crop_region(kp, h, w)
            if region is not None and crop.box_side_fraction(region, h, w) <= MAX_CROP_FRACTION:
                entries.append(
                    {
                        "name": name + ":crop",
                        "source": rel,
                        "frame": idx,
                        "kind": "crop",
                        "box": list(region),
                        "width": w,
                        "height": h,
                    }
                )
                inputs.append(crop.crop_and_resize(img, region, size))
        data = np.stack(inputs).astype(np.uint8)
        assert np.array_equal(data.astype(np.int32), np.stack(inputs)), "inputs must be 0..255"
        (OUT / f"inputs-{model}.u8.gz").write_bytes(gzip.compress(data.tobytes(), compresslevel=9, mtime=0))
        (OUT / f"index-{model}.json").write_text(
            json.dumps({"model": model, "inputSize": size, "entries": entries}, indent=1) + "\n"
        )
        print(f"{model}: {len(entries)} inputs ({sum(e['kind'] == 'crop' for e in entries)} crops)")


if __name__ == "__main__":
    main()
