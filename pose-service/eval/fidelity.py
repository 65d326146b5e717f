"""Label-free pose fidelity on real clips, per model: `npm run eval` (BENCHMARKS.md "Fidelity").

    python pose-service/eval/fidelity.py [--models movenet-thunder,blazepose-full,...] [--clips a.mp4,b.avi|shared]
        [--max-frames 60] [--fps 0] [--batch 8] [--threads 1] [--json FILE] [--markdown FILE]

Each clip's frames (decoded with cv2, upright as displayed) are posed as a worker poses a video: the backend
loaded as a worker loads it (CPU), ``detect`` with tracking on, in batches of ``--batch`` consecutive frames.
Then the same frames are posed again turned 90, 180 and 270 degrees and mirrored, and each pose is mapped back
onto the upright frame (the mirror's left and right swapped back). No labels are needed:

- consistency: for every frame with a person both ways, the distance of each of the 17 keypoints from the
  upright pose's, in torso lengths (the upright pose's shoulder centre to hip centre); median and p90 over all
  keypoints of all frames, and the mean pose score (0 where nobody was found);
- detection rate: the frames posed upright with a person (pose score >= 0.25);
- left/right swaps: consecutive upright frames where a left/right pair of keypoints (both scoring >= 0.3 in
  both frames and at least 0.2 torso lengths apart) is nearer the other side's previous position than its own,
  per 100 frame pairs;
- jitter: on the stillest stretch of ``STILL_WINDOW`` frames (the least motion of the person's box, its centre
  and size, in torso lengths, summed over the stretch), the median frame-to-frame motion of the keypoints
  scoring >= 0.3, in torso lengths (raw keypoints: the server's one-euro smoothing is not applied); the box's own
  motion over that stretch is reported next to it.

Clips: the committed ``server/test/fixtures/*.mp4`` by default; ``--clips shared`` adds ``../shared/fixtures``'s
videos where that folder exists; any paths otherwise. Prints a Markdown table and writes the JSON (``--json``).
The models are listed in ``MODELS``: any backend with the COCO-17 keypoints and the PoseBackend interface fits.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
SERVICE_DIR = EVAL_DIR.parent  # pose-service/
REPO_ROOT = SERVICE_DIR.parent
if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))

import numpy as np  # noqa: E402

MODELS = ("movenet-thunder", "movenet-lightning", "blazepose-lite", "blazepose-full", "blazepose-heavy")
TRANSFORMS = ("rot90", "rot180", "rot270", "flip")
COMMITTED_CLIPS = REPO_ROOT / "server" / "test" / "fixtures"
SHARED_CLIPS = REPO_ROOT.parent / "shared" / "fixtures"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

MIN_POSE_SCORE = 0.25  # a frame with a person: the backends' own threshold
KEYPOINT_SCORE = 0.3  # keypoints counted for swaps and jitter (tfjs-models' suggested threshold)
SWAP_MIN_SEPARATION = 0.2  # torso lengths between a left and a right keypoint for a swap to be told apart
STILL_WINDOW = 8  # frames in the stillest stretch
# COCO-17 left/right pairs: eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
LR_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
FLIP_ORDER = [0] + [j for a, b in LR_PAIRS for j in (b, a)]  # index k of a mirrored pose holds keypoint FLIP_ORDER[k]
SHOULDERS, HIPS = (5, 6), (11, 12)


# -- frames and transforms -------------------------------------------------------------------------


def read_clip(path: Path, max_frames: int = 0, fps: float = 0.0) -> list[np.ndarray]:
    """The clip's frames as HxWx3 uint8 RGB (upright as displayed: cv2 applies the rotation metadata), at most
    ``max_frames`` (0: all), sampled at ``fps`` (0: every frame)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SystemExit(f"eval: cv2 cannot open {path}")
    rate = cap.get(cv2.CAP_PROP_FPS) or 0.0
    step = max(1, round(rate / fps)) if fps and rate else 1
    frames: list[np.ndarray] = []
    k = 0
    while not max_frames or len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        if k % step == 0:
            frames.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        k += 1
    cap.release()
    if not frames:
        raise SystemExit(f"eval: no frames in {path}")
    return frames


def turn_matrix(degrees: float, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """The 2x3 affine that turns an image ``degrees`` clockwise about its centre onto a canvas that holds all of
    it (continuous pixel coordinates), and that canvas's height and width."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    out_w = round(abs(width * c) + abs(height * s))
    out_h = round(abs(width * s) + abs(height * c))
    rot = np.array([[c, -s], [s, c]])  # image y points down: a positive angle turns clockwise on screen
    offset = np.array([out_w / 2, out_h / 2]) - rot @ np.array([width / 2, height / 2])
    return np.hstack([rot, offset[:, None]]), out_h, out_w


def transform(image: np.ndarray, name: str) -> np.ndarray:
    """rotN: the pixels turned N degrees clockwise (quarter turns exactly; other angles onto a canvas that holds
    the whole frame, black around it); flip: mirrored left to right; rot0: as is."""
    if name == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    degrees = float(name.removeprefix("rot"))
    if degrees % 90 == 0:
        return np.ascontiguousarray(np.rot90(image, -int(degrees // 90)))
    import cv2

    m, out_h, out_w = turn_matrix(degrees, *image.shape[:2])
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5  # continuous coordinates -> pixel indices
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def map_back(keypoints: np.ndarray, name: str, height: int, width: int) -> np.ndarray:
    """Keypoints (17, 3) (x, y, score) posed on ``transform(image, name)`` -> the upright image's pixels (the
    image was ``height`` x ``width`` before the transform); a mirrored pose's left and right swapped back."""
    x, y, s = keypoints[:, 0], keypoints[:, 1], keypoints[:, 2]
    if name == "flip":
        return np.stack([width - x, y, s], axis=1)[FLIP_ORDER]
    degrees = float(name.removeprefix("rot"))
    if degrees % 90 != 0:
        m, _, _ = turn_matrix(degrees, height, width)
        xy = (keypoints[:, :2] - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
        return np.concatenate([xy, keypoints[:, 2:3]], axis=1)
    quarter = int(degrees // 90) % 4
    if quarter == 1:  # turned clockwise: (x, y) upright -> (height - y, x)
        return np.stack([y, height - x, s], axis=1)
    if quarter == 2:
        return np.stack([width - x, height - y, s], axis=1)
    if quarter == 3:  # (x, y) upright -> (y, width - x)
        return np.stack([width - y, x, s], axis=1)
    return keypoints.copy()


# -- posing ----------------------------------------------------------------------------------------


def bench_common():
    """pose-service/bench's helpers: the thread set-up, loader and row counter the benchmark uses."""
    if str(SERVICE_DIR / "bench") not in sys.path:
        sys.path.insert(0, str(SERVICE_DIR / "bench"))
    import bench_common

    return bench_common


@functools.cache
def threaded_torch(threads: int):
    """torch with the worker's thread settings, applied once per process (torch 1.13 aborts the process if its
    interop threads are set a second time)."""
    _numpy, _cv2, torch, _in_effect = bench_common().set_threads(threads)
    return torch


def load_backend(model: str, threads: int):
    """The backend as a worker loads it on CPU (threads applied the worker's way): the benchmark's own loader."""
    return bench_common().load_backend(model, threaded_torch(threads), threads)


def count_inferences(backend) -> dict:
    """Counts the model rows a backend runs (as the bench counts them), without changing its work."""
    return bench_common().count_model_rows(backend)


def pose_frames(backend, frames: list[np.ndarray], batch: int) -> list[np.ndarray | None]:
    """As a worker poses one video: batches of consecutive frames, tracking on. (17, 3) pixels or None."""
    out: list[np.ndarray | None] = []
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        indices = list(range(start, start + len(chunk)))
        options = {"tracking": True, "vertices": False, "flipTest": False, "indices": indices}
        for persons in backend.detect(chunk, options):
            if isinstance(persons, list) and persons and persons[0]["score"] >= MIN_POSE_SCORE:
                out.append(np.asarray(persons[0]["keypoints"], np.float64))
            else:
                out.append(None)
    return out


# -- measures --------------------------------------------------------------------------------------


def torso_length(kp: np.ndarray) -> float:
    return float(np.linalg.norm(kp[list(SHOULDERS), :2].mean(axis=0) - kp[list(HIPS), :2].mean(axis=0)))


def pose_score(kp: np.ndarray | None) -> float:
    if kp is None:
        return 0.0
    s = kp[:, 2]
    valid = s[s > 0.2]
    return float(valid.mean()) if valid.size else 0.0


def consistency(upright: list[np.ndarray | None], other: list[np.ndarray | None]) -> np.ndarray:
    """Per keypoint, per frame with a person both ways: distance in upright torso lengths."""
    errors = []
    for a, b in zip(upright, other):
        if a is None or b is None:
            continue
        torso = torso_length(a)
        if torso <= 1e-6:
            continue
        errors.append(np.hypot(*(b[:, :2] - a[:, :2]).T) / torso)
    return np.concatenate(errors) if errors else np.zeros(0)


def lr_swaps(poses: list[np.ndarray | None]) -> tuple[int, int]:
    """(frame pairs with a left/right swap, consecutive frame pairs with a person in both)."""
    swaps = pairs = 0
    for a, b in zip(poses, poses[1:]):
        if a is None or b is None:
            continue
        pairs += 1
        torso = torso_length(a)
        for left, right in LR_PAIRS:
            if min(a[left, 2], a[right, 2], b[left, 2], b[right, 2]) < KEYPOINT_SCORE:
                continue
            if np.linalg.norm(a[left, :2] - a[right, :2]) < SWAP_MIN_SEPARATION * torso:
                continue
            same = np.linalg.norm(b[left, :2] - a[left, :2]) + np.linalg.norm(b[right, :2] - a[right, :2])
            crossed = np.linalg.norm(b[left, :2] - a[right, :2]) + np.linalg.norm(b[right, :2] - a[left, :2])
            if crossed < same:
                swaps += 1
                break
    return swaps, pairs


def box_motion(a: np.ndarray, b: np.ndarray) -> float:
    """Motion of the box around the confident keypoints from a to b (centre and size), in a's torso lengths."""

    def box(kp):
        sel = kp[kp[:, 2] >= KEYPOINT_SCORE, :2]
        if len(sel) == 0:
            sel = kp[:, :2]
        lo, hi = sel.min(axis=0), sel.max(axis=0)
        return np.concatenate([(lo + hi) / 2, hi - lo])

    return float(np.abs(box(b) - box(a)).sum() / max(torso_length(a), 1e-6))


def jitter(poses: list[np.ndarray | None], window: int = STILL_WINDOW) -> dict | None:
    """The stillest stretch of ``window`` frames with a person in each: its frames, the box's motion and the
    median keypoint motion per frame (torso lengths). None where no such stretch exists."""
    best = None
    for start in range(0, len(poses) - window + 1):
        run = poses[start : start + window]
        if any(p is None for p in run):
            continue
        motion = sum(box_motion(a, b) for a, b in zip(run, run[1:]))  # type: ignore[arg-type]
        if best is None or motion < best[1]:
            best = (start, motion)
    if best is None:
        return None
    start, motion = best
    run = poses[start : start + window]
    steps = []
    for a, b in zip(run, run[1:]):
        assert a is not None and b is not None
        keep = (a[:, 2] >= KEYPOINT_SCORE) & (b[:, 2] >= KEYPOINT_SCORE)
        steps.append(np.hypot(*(b[keep, :2] - a[keep, :2]).T) / max(torso_length(a), 1e-6))
    moved = np.concatenate(steps) if steps else np.zeros(0)
    return {
        "frames": [start, start + window - 1],
        "boxMotionPerFrame": motion / (window - 1),
        "median": float(np.median(moved)) if moved.size else math.nan,
    }


def summarize(errors: np.ndarray) -> dict:
    if errors.size == 0:
        return {"median": math.nan, "p90": math.nan, "keypoints": 0}
    return {"median": float(np.median(errors)), "p90": float(np.percentile(errors, 90)), "keypoints": int(errors.size)}


def evaluate_clip(backend, frames: list[np.ndarray], batch: int, transforms=TRANSFORMS) -> dict:
    """Every measure for one clip and one loaded backend."""
    h, w = frames[0].shape[:2]
    counter = count_inferences(backend)
    t0 = time.perf_counter()
    upright = pose_frames(backend, frames, batch)
    seconds = time.perf_counter() - t0
    result: dict = {
        "frames": len(frames),
        "size": [w, h],
        "inferencesPerFrame": counter["rows"] / len(frames),
        "msPerFrame": seconds * 1000 / len(frames),
        "detectionRate": sum(p is not None for p in upright) / len(frames),
        "meanScore": float(np.mean([pose_score(p) for p in upright])),
    }
    swaps, pairs = lr_swaps(upright)
    result["swaps"] = {"frames": swaps, "pairs": pairs, "per100": 100 * swaps / pairs if pairs else math.nan}
    result["jitter"] = jitter(upright)
    result["transforms"] = {}
    for name in transforms:
        counter["rows"] = 0
        posed = pose_frames(backend, [transform(f, name) for f in frames], batch)
        back = [None if p is None else map_back(p, name, h, w) for p in posed]
        result["transforms"][name] = {
            **summarize(consistency(upright, back)),
            "meanScore": float(np.mean([pose_score(p) for p in posed])),
            "detectionRate": sum(p is not None for p in posed) / len(frames),
            "inferencesPerFrame": counter["rows"] / len(frames),
        }
    return result


# -- report ----------------------------------------------------------------------------------------


def fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    transforms = results["settings"]["transforms"]
    s = results["settings"]
    sampled = f" at {s['fps']} fps" if s.get("fps") else ""
    preface = (
        f"Fidelity, {results.get('startedAt', '')}: {', '.join(results.get('clips', []))}; at most {s.get('maxFrames')}"
        f" frames per clip{sampled}, batches of {s.get('batch')}; torch {results.get('torch', '?')}. Consistency:"
        " median / p90 distance from the upright pose in torso lengths (mean pose score of the transformed run);"
        " jitter: median keypoint motion per frame on the stillest stretch, in torso lengths (the box's motion per"
        " frame), and its frames.\n\n"
    )
    head = (
        "| model | clip | frames | detected | score | inferences/frame | "
        + " | ".join(f"{t}: median / p90 (score)" for t in transforms)
        + " | L/R swaps per 100 | jitter (box motion), frames |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for model, clips in results["models"].items():
        for clip, r in clips.items():
            cells = [
                model,
                Path(clip).name,
                str(r["frames"]),
                f"{100 * r['detectionRate']:.0f}%",
                fmt(r["meanScore"]),
                fmt(r["inferencesPerFrame"], 3),
            ]
            for t in transforms:
                m = r["transforms"].get(t)
                cells.append(f"{fmt(m['median'], 3)} / {fmt(m['p90'], 2)} ({fmt(m['meanScore'])})" if m else "")
            cells.append(fmt(r["swaps"]["per100"], 1))
            j = r["jitter"]
            cells.append(
                f"{fmt(j['median'], 3)} ({fmt(j['boxMotionPerFrame'], 3)}), {j['frames'][0]}-{j['frames'][1]}"
                if j
                else "n/a"
            )
            lines.append("| " + " | ".join(cells) + " |")
    return preface + "\n".join(lines) + "\n"


def clip_paths(spec: str | None) -> list[Path]:
    committed = sorted(COMMITTED_CLIPS.glob("*.mp4"))
    if not spec:
        return committed
    paths: list[Path] = []
    for item in spec.split(","):
        item = item.strip()
        if item == "shared":
            paths += committed
            if SHARED_CLIPS.is_dir():
                same = {(p.name, p.stat().st_size) for p in committed}  # a committed copy of a shared clip: once
                paths += sorted(
                    p
                    for p in SHARED_CLIPS.iterdir()
                    if p.suffix.lower() in VIDEO_SUFFIXES and (p.name, p.stat().st_size) not in same
                )
            else:
                print(f"eval: {SHARED_CLIPS} is absent: committed clips only", file=sys.stderr)
        elif item:
            paths.append(Path(item).resolve())
    unique = list(dict.fromkeys(paths))
    for p in unique:
        if not p.is_file():
            raise SystemExit(f"eval: no such clip: {p}")
    return unique


def shown(path: Path) -> str:
    """A clip's path as the report shows it: from the repository root (``../`` for the shared folder)."""
    if REPO_ROOT in path.parents:
        return str(path.relative_to(REPO_ROOT))
    if REPO_ROOT.parent in path.parents:
        return "../" + str(path.relative_to(REPO_ROOT.parent))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--clips", help="comma-separated paths, or 'shared' (default: server/test/fixtures/*.mp4)")
    p.add_argument("--max-frames", type=int, default=60, help="per clip (0: all)")
    p.add_argument("--fps", type=float, default=0.0, help="sample the clip at this rate (0: every frame)")
    p.add_argument("--transforms", default=",".join(TRANSFORMS), help="rotN (N degrees clockwise, any N), flip")
    p.add_argument("--batch", type=int, default=8, help="frames per detect call, as POSE_BATCH_SIZE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write every number here")
    p.add_argument("--markdown", help="write the table here too")
    args = p.parse_args(argv)

    models = [m for m in args.models.split(",") if m]
    transforms = [t for t in args.transforms.split(",") if t]
    for t in transforms:
        if t != "flip" and not (t.startswith("rot") and t[3:].replace(".", "", 1).isdigit()):
            raise SystemExit(f"eval: unknown transform {t!r} (rotN or flip)")
    clips = clip_paths(args.clips)
    decoded = {}
    for path in clips:
        frames = read_clip(path, args.max_frames, args.fps)
        decoded[path] = frames
        print(f"eval: {path.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}", file=sys.stderr)
    results: dict = {
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {
            "maxFrames": args.max_frames,
            "fps": args.fps,
            "batch": args.batch,
            "threads": args.threads,
            "transforms": transforms,
        },
        "clips": [shown(p) for p in clips],
        "models": {},
    }
    for model in models:
        t0 = time.perf_counter()
        backend = load_backend(model, args.threads)
        import torch

        results["torch"] = torch.__version__
        results["models"][model] = {}
        for path, frames in decoded.items():
            results["models"][model][shown(path)] = evaluate_clip(backend, frames, args.batch, transforms)
        print(f"eval: {model} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = markdown(results)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
