"""Python side of the BlazePose parity test (pose-service/parity/blazepose-parity.test.ts).

Loads each model as the worker does (BlazePoseBackend.load, CPU, 1 thread, oneDNN graphs), poses the parity
images and writes into OUT (a folder the caller owns):
  index.json                          {"images": [{"name", "width", "height", "source"}], "sequence": [names]}
  NAME.rgb                            each image, raw RGB (row-major), as the backend saw it
  MODEL/NAME.det.f32, .det-out.f32    the detector's input [224, 224, 3] and output [2254, 13] (float32)
  MODEL/NAME.lm.f32, .lm-out.f32      the landmark model's input [256, 256, 3] and outputs concatenated in the
                                      order ld_3d [195], output_poseflag [1], activation_heatmap [64, 64, 39]
                                      (NHWC, as TF.js gives it), world_3d [117]
and prints JSON on stdout: {"python", "torch", "models": {MODEL: {"poses": {NAME: pose | null},
"sequence": [pose | null, ...]}}}, a pose = {"score", "keypoints" 33 x [x, y, z, visibility], "world" 33 x [x, y, z],
"roi": {"xCenter", "yCenter", "width", "height", "rotation"}, "auxiliary" 2 x [x, y]} (unrounded).

Images: the fixture stills (tests/fixtures/*.jpg, decoded by cv2), messi5 turned by 90 and 180 degrees (a lying and
an upside-down person: rotated ROIs), and video frames decoded by ffmpeg to rgb24 as the server does (upright,
rotation metadata applied); the "sequence" is 8 consecutive frames of messi-pan.mp4, posed with tracking.
Usage: python parity/blazepose_parity_helper.py --out DIR [--ffmpeg PATH] [MODEL...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = HERE.parent / "tests" / "fixtures"
MODELS = ("blazepose-lite", "blazepose-full", "blazepose-heavy")
STILLS = ("messi5", "basketball1")
VIDEO_FRAMES = (
    ("messi-pan#45", "messi-pan.mp4", 45),
    ("messi-rot90#15", "messi-rot90.mp4", 15),
    ("vtest-3s#20", "vtest-3s.mp4", 20),
)
SEQUENCE = ("messi-pan.mp4", 30, 8)  # file, first frame, count


def video_frames(ffmpeg: str, file: str, first: int, count: int):
    """Frames first..first+count-1 of a server test video as RGB uint8 arrays (ffmpeg rgb24, rotation applied)."""
    import numpy as np

    path = REPO / "server" / "test" / "fixtures" / file
    probe = subprocess.run(  # one frame as PNG, for the upright size in its header
        [ffmpeg, "-v", "error", "-i", str(path), "-vframes", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
        check=True,
        capture_output=True,
    ).stdout
    width, height = int.from_bytes(probe[16:20], "big"), int.from_bytes(probe[20:24], "big")  # PNG IHDR
    raw = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"select=between(n\\,{first}\\,{first + count - 1})",
            "-vsync",
            "0",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    if len(frames) != count:
        raise SystemExit(f"{file}: got {len(frames)} frames from {first}, expected {count}")
    return [np.ascontiguousarray(f) for f in frames]


def images(ffmpeg: str | None):
    import cv2
    import numpy as np

    out = {}
    for name in STILLS:
        bgr = cv2.imread(str(FIXTURES / f"{name}.jpg"), cv2.IMREAD_COLOR)
        out[name] = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    out["messi5-rot90"] = np.ascontiguousarray(np.rot90(out["messi5"], 1))
    out["messi5-rot180"] = np.ascontiguousarray(np.rot90(out["messi5"], 2))
    sequence = []
    if ffmpeg:
        for name, file, index in VIDEO_FRAMES:
            out[name] = video_frames(ffmpeg, file, index, 1)[0]
        file, first, count = SEQUENCE
        for k, frame in enumerate(video_frames(ffmpeg, file, first, count)):
            name = f"{Path(file).stem}#t{first + k}"
            out[name] = frame
            sequence.append(name)
    return out, sequence


def pose_json(pose):
    if pose is None:
        return None
    r = pose.roi
    return {
        "score": pose.score,
        "keypoints": pose.keypoints[:, :4].tolist(),
        "world": pose.world.tolist(),
        "roi": {
            "xCenter": r.x_center,
            "yCenter": r.y_center,
            "width": r.width,
            "height": r.height,
            "rotation": r.rotation,
        },
        "auxiliary": pose.auxiliary.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--ffmpeg", default=None)
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    import numpy as np
    import torch

    from posepool_worker.backends.base import LoadContext
    from posepool_worker.backends.blazepose import BlazePoseBackend, detector, roi
    from posepool_worker.backends.blazepose import landmarks as lm
    from posepool_worker.runtime import disable_unusable_nnpack

    disable_unusable_nnpack()
    torch.set_num_threads(1)  # parity, not speed; leave the other core to the TF.js side
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    imgs, sequence = images(args.ffmpeg)
    index = {
        "images": [{"name": n, "width": int(im.shape[1]), "height": int(im.shape[0])} for n, im in imgs.items()],
        "sequence": sequence,
    }
    for name, im in imgs.items():
        im.tofile(out_dir / f"{name}.rgb")
    (out_dir / "index.json").write_text(json.dumps(index))

    result = {"python": platform.python_version(), "torch": torch.__version__, "models": {}}
    for model in args.models:
        backend = BlazePoseBackend.load(LoadContext(model, torch.device("cpu"), 1, HERE.parent / ".models", REPO))
        mdir = out_dir / model
        mdir.mkdir(exist_ok=True)
        poses = {}
        for name, im in imgs.items():
            if name in sequence:
                continue
            h, w = im.shape[:2]
            x, padding = roi.detector_input(im)
            raw = backend.nets.detect(x[None])
            x.tofile(mdir / f"{name}.det.f32")
            raw[0].tofile(mdir / f"{name}.det-out.f32")
            found = detector.detections(raw[0], backend.anchors, padding)
            if not found:
                poses[name] = None
                continue
            rect = roi.roi_from_points(found[0].keypoints[:2], w, h)
            crop, crop_pad = roi.landmark_input(im, rect)
            res = backend.nets.landmark(crop[None])
            crop.tofile(mdir / f"{name}.lm.f32")
            heat_nhwc = res.heatmap[0].transpose(1, 2, 0)
            np.concatenate(
                [res.landmarks[0].ravel(), res.pose_score[:1], heat_nhwc.ravel(), res.world[0].ravel()]
            ).astype(np.float32).tofile(mdir / f"{name}.lm-out.f32")
            pose = lm.decode_pose(
                res.landmarks[0], float(res.pose_score[0]), res.heatmap[0], res.world[0], rect, crop_pad, w, h
            )
            poses[name] = pose_json(pose)
            # the backend's own path gives the same pose (to 0.05 px: torch 1.13's eager convolutions round a
            # batch a little differently from one image, ~0.01 px here)
            same = backend.pose_afresh([im])[0]
            if (same is None) != (pose is None) or (
                pose is not None
                and same is not None
                and not np.allclose(same.keypoints, pose.keypoints, rtol=0, atol=0.05)
            ):
                raise SystemExit(f"{model} {name}: pose_afresh disagrees with the step-by-step pose")
        tracked = backend.track([imgs[n] for n in sequence], list(range(len(sequence)))) if sequence else []
        result["models"][model] = {"poses": poses, "sequence": [pose_json(p) for p in tracked]}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
