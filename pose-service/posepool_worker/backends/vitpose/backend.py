"""ViTPose-S/B/L/H backend: top-down COCO-17 keypoints from the official checkpoints, in plain PyTorch.

Per batch: one rider box per frame (MoveNet, full frame as fallback: topdown/boxes.py), the UDP affine crop
with 1.25 padding to 192x256 (w x h), ImageNet normalisation, all crops as ONE backbone tensor (plus their
mirror images in the same tensor when options["flipTest"] is true), 64x48 heatmaps, the official UDP + DARK
decoding, keypoints in pixels of the frame with the heatmap maximum (clipped to 0..1) as score.

Person fields: ``score`` (mean keypoint score), ``bbox`` (the rider box the crop was made from, [x, y, w, h]),
``keypoints`` (17 x [x, y, score]), ``boxSource`` ("movenet" | "blazepose" | "full-frame").

options["flipTest"] (default false): also pose the horizontally mirrored crops and average the heatmaps, as
the official COCO evaluation does (its AP figures include it); twice the compute for a small accuracy gain.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from ...errors import FrameError, StartupError
from ..base import LoadContext, PoseBackend
from ..topdown import crop
from ..topdown.boxes import PersonBox, PersonBoxSource
from ..topdown.checkpoints import materialize, read_checkpoint, state_dict_of
from ..topdown.model_files import download_hint, files_missing, first_existing
from ..topdown.precision import autocast, resolve_precision
from ..topdown.test_settings import tiny_models_requested
from .config import FILES, SIZES, TINY, ViTPoseConfig
from .decode import decode_heatmaps, flip_permutation
from .network import ViTPoseNet
from .weights import to_model_state


class ViTPoseBackend(PoseBackend):
    extras = ["boxSource"]

    def __init__(
        self,
        model_name: str,
        cfg: ViTPoseConfig,
        net: ViTPoseNet,
        device: torch.device,
        precision: str,
        boxes: PersonBoxSource,
    ):
        self.model_name = model_name
        self.cfg = cfg
        self.net = net
        self.device = device
        self.precision = precision
        self.boxes = boxes
        self._flip_perm = torch.tensor(flip_permutation(cfg.num_keypoints), device=device)

    @classmethod
    def load(cls, ctx: LoadContext) -> ViTPoseBackend:
        name = ctx.model
        if name not in SIZES:
            raise StartupError(
                "UnknownModel", f"{name!r} is not a ViTPose model", f"set POSE_MODEL to one of: {', '.join(SIZES)}"
            )
        cfg = TINY if tiny_models_requested() else SIZES[name]
        models_dir = ctx.models_dir
        path = first_existing(models_dir / f for f in FILES[name])
        if path is None:
            raise files_missing(name, models_dir, models_dir / FILES[name][0], f"{SIZES[name].label} weights")
        hint = (
            f"the file may be truncated or not an official {SIZES[name].label} COCO checkpoint: delete it, then "
            + download_hint(name, models_dir)
        )
        t0 = time.perf_counter()
        state = to_model_state(state_dict_of(read_checkpoint(path, name, hint), path, name, hint))
        precision = resolve_precision(ctx.device)
        net = materialize(lambda dev: ViTPoseNet(cfg, device=dev), state, ctx.device, name, path, hint)
        del state
        print(
            f"posepool: {name} weights {path} loaded in {time.perf_counter() - t0:.1f}s on {ctx.device} ({precision})",
            file=sys.stderr,
        )
        return cls(name, cfg, net, ctx.device, precision, PersonBoxSource.from_env(ctx))

    # -- the steps of detect(), usable on their own (tests, bench) ----------------------------------------------

    def crops(self, images: list[np.ndarray], boxes: list[PersonBox]):
        """UDP crops of the rider boxes: (N, 256, 192, 3) uint8, box centres (N, 2), box sizes (N, 2)."""
        in_wh = (self.cfg.backbone.img_hw[1], self.cfg.backbone.img_hw[0])
        centers, sizes, out = [], [], []
        for img, box in zip(images, boxes):
            c, s = crop.vitpose_box_to_center_size(box.xywh, in_wh)
            out.append(crop.warp(img, crop.udp_warp_matrix(c, s, in_wh), in_wh))
            centers.append(c)
            sizes.append(s)
        return np.stack(out), np.stack(centers), np.stack(sizes)

    @torch.inference_mode()
    def heatmaps(self, crops_u8: np.ndarray, flip_test: bool) -> np.ndarray:
        """(N, H, W, 3) uint8 crops -> (N, 17, 64, 48) float32 heatmaps (flip-averaged when ``flip_test``)."""
        x = crop.normalize_batch(crops_u8, self.device)
        n = x.shape[0]
        if flip_test:
            x = torch.cat([x, x.flip(3)], dim=0)
        with autocast(self.device, self.precision):
            hm = self.net(x)
        hm = hm.float()
        if flip_test:
            hm = (hm[:n] + hm[n:].index_select(1, self._flip_perm).flip(3)) * 0.5
        return hm.cpu().numpy()

    # -- PoseBackend --------------------------------------------------------------------------------------------

    def detect(self, images: list[np.ndarray], options: dict) -> list:
        if not images:
            return []
        boxes = self.boxes.rider_boxes(images, options)
        crops_u8, centers, sizes = self.crops(images, boxes)
        hms = self.heatmaps(crops_u8, bool(options.get("flipTest", False)))
        keypoints = decode_heatmaps(hms, centers, sizes)
        return [self.person(box, kp) for box, kp in zip(boxes, keypoints)]

    @staticmethod
    def person(box: PersonBox, kp: np.ndarray):
        if not np.all(np.isfinite(kp)):
            return FrameError("INFERENCE_FAILED", "the model produced non-finite heatmaps for this frame")
        kp = kp.copy()
        kp[:, 2] = np.clip(kp[:, 2], 0.0, 1.0)  # heatmap maxima can stray a little outside 0..1; the contract says 0..1
        return [
            {
                "score": round(float(np.mean(kp[:, 2])), 4),
                "bbox": [round(v, 2) for v in box.xywh],
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in kp],
                "boxSource": box.source,
            }
        ]
