"""HMR 2.0 backend (4D-Humans): SMPL body, 3D joints and camera per rider, with COCO-17 keypoints.

Per batch: one rider box per frame (MoveNet, full frame as fallback: topdown/boxes.py); each box grown to
aspect 192:256 and cropped as its bounding square to 256x256 (anti-alias blur first when it is much larger,
as 4D-Humans' ViTDetDataset); all crops as ONE tensor through the ViT-H backbone and the SMPL head (autocast
on CUDA, see topdown/precision.py); SMPL skinning, projection and camera maths in float32.

Person fields (the contract's fields first):
- ``score``: the box source's person score (MoveNet's pose score; 0.0 for a full-frame fallback box),
- ``bbox``: the rider box [x, y, w, h] the crop was made from; ``boxSource``: "movenet" | "blazepose" | "full-frame",
- ``keypoints``: COCO-17 [x, y, score] in image pixels, from HMR2's projected OpenPose joints. HMR2 regresses
  every joint and has no per-joint confidence: score is 1.0 for a keypoint inside the frame, 0.0 outside,
- ``smpl``: {"rotation": "matrix", "globalOrient": 3x3, "bodyPose": 23 x 3x3 (SMPL joint order 1..23),
  "betas": 10}; rotation MATRICES (row-major, as HMR2 predicts them; no axis-angle),
- ``camera``: {"translation": [x, y, z] (metres, full-image camera), "focalLength": pixels,
  "principalPoint": [W/2, H/2], "cropCamera": [s, tx, ty] (HMR2's raw crop camera)},
- ``joints3d``: 44 x [x, y, z] metres, SMPL frame (add camera.translation for camera coordinates), order
  ``hmr2.smpl.JOINT_NAMES`` (25 OpenPose BODY_25 + 19 SMPL_to_J19),
- ``vertices``: 6890 x [x, y, z], same frame, only when options["vertices"] is true (about 200 KB per person).
"""

from __future__ import annotations

import re
import sys
import time

import numpy as np
import torch

from ...errors import FrameError, StartupError
from ..base import LoadContext, PoseBackend
from ..topdown import crop
from ..topdown.boxes import PersonBox, PersonBoxSource
from ..topdown.checkpoints import is_cuda_oom, materialize, out_of_memory_at_load, read_checkpoint, state_dict_of
from ..topdown.model_files import download_hint, files_missing, first_existing
from ..topdown.precision import autocast, resolve_precision
from ..topdown.test_settings import tiny_models_requested
from . import camera
from .config import CHECKPOINT, HMR2, J19_REGRESSOR, SMPL_FILES, SMPL_URL, SMPLIFY_URL, TINY, HMR2Config
from .network import HMR2Net
from .smpl import SMPL
from .smpl_file import read_regressor, read_smpl

MODEL = "hmr2"
# Lightning-module state that is not the network: training-only (discriminator), the SMPL buffers the
# training code registered (posepool uses the user's own SMPL file), a bookkeeping flag.
IGNORED = re.compile(r"^(discriminator\.|smpl\.|initialized$)")


def smpl_missing(models_dir) -> StartupError:
    return StartupError(
        "ModelFilesMissing",
        f"hmr2: the SMPL body model is missing: {models_dir / SMPL_FILES[0]}",
        f"SMPL is licensed and cannot be downloaded by posepool: register at {SMPL_URL}, download the neutral "
        f"SMPL model for Python (4D-Humans uses basicModel_neutral_lbs_10_207_0_v1.0.0.pkl, from {SMPLIFY_URL}) and "
        f"save it as {models_dir / SMPL_FILES[0]}; then `npm run doctor`",
    )


class HMR2Backend(PoseBackend):
    extras = ["boxSource", "smpl", "camera", "joints3d", "vertices"]

    def __init__(
        self, cfg: HMR2Config, net: HMR2Net, smpl: SMPL, device: torch.device, precision: str, boxes: PersonBoxSource
    ):
        self.cfg = cfg
        self.net = net
        self.smpl = smpl
        self.device = device
        self.precision = precision
        self.boxes = boxes

    @classmethod
    def load(cls, ctx: LoadContext) -> HMR2Backend:
        cfg = TINY if tiny_models_requested() else HMR2
        d = ctx.models_dir
        ckpt, j19 = d / CHECKPOINT, d / J19_REGRESSOR
        if not ckpt.is_file():
            raise files_missing(MODEL, d, ckpt, "HMR 2.0 checkpoint")
        if not j19.is_file():
            raise files_missing(MODEL, d, j19, "SMPL_to_J19.pkl (part of hmr2_data.tar.gz)")
        smpl_path = first_existing(d / f for f in SMPL_FILES)
        if smpl_path is None:
            raise smpl_missing(d)
        redownload = "the file may be truncated: delete it, then " + download_hint(MODEL, d)
        try:
            smpl_data = read_smpl(smpl_path)
            j19_regressor = read_regressor(j19)
        except Exception as exc:  # any parse failure is an unusable file
            raise StartupError(
                "ModelFilesMissing",
                f"hmr2: cannot read {smpl_path.name} / {j19.name}: {type(exc).__name__}: {exc}",
                f"replace SMPL_NEUTRAL.pkl with the official file ({SMPL_URL}), or {redownload}",
            ) from exc

        t0 = time.perf_counter()
        # a Lightning checkpoint (yacs CfgNode in hyper_parameters): straight to the restricted unpickler
        raw = state_dict_of(read_checkpoint(ckpt, MODEL, redownload, weights_only_first=False), ckpt, MODEL, redownload)
        state = {k: v for k, v in raw.items() if not IGNORED.match(k)}
        del raw
        precision = resolve_precision(ctx.device)
        net = materialize(lambda dev: HMR2Net(cfg, device=dev), state, ctx.device, MODEL, ckpt, redownload)
        del state
        try:
            smpl = SMPL(smpl_data, j19_regressor, cfg.head.num_betas).to(ctx.device)
        except ValueError as exc:
            raise StartupError(
                "ModelFilesMissing",
                f"hmr2: {smpl_path} is not a usable SMPL model: {exc}",
                f"replace it with the official neutral SMPL model ({SMPL_URL})",
            ) from exc
        except Exception as exc:
            if is_cuda_oom(exc):
                raise out_of_memory_at_load(MODEL, ctx.device, exc) from exc
            raise
        print(
            f"posepool: hmr2 weights {ckpt} loaded in {time.perf_counter() - t0:.1f}s on {ctx.device} "
            f"({precision}); SMPL from {smpl_path}",
            file=sys.stderr,
        )
        return cls(cfg, net, smpl, ctx.device, precision, PersonBoxSource.from_env(ctx))

    # -- the steps of detect(), usable on their own (tests, bench) ----------------------------------------------

    def crops(self, images: list[np.ndarray], boxes: list[PersonBox]):
        """Square 256x256 crops: (N, 256, 256, 3) uint8, box centres (N, 2), square sides (N,)."""
        size = self.cfg.crop_size
        out, centers, sides = [], [], []
        for img, box in zip(images, boxes):
            center, side = crop.hmr2_box_to_center_size(box.xywh)
            matrix = crop.square_crop_matrix(center, side, size)
            sigma = crop.antialias_sigma(side, size)
            if sigma > 0:
                region, matrix = crop.blur_region(img, matrix, (size, size), sigma)
                out.append(crop.warp(region, matrix, (size, size)))
            else:
                out.append(crop.warp(img, matrix, (size, size)))
            centers.append(center)
            sides.append(side)
        return np.stack(out), np.stack(centers), np.asarray(sides, dtype=np.float64)

    @torch.inference_mode()
    def regress(
        self, crops_u8: np.ndarray, centers: np.ndarray, sides: np.ndarray, img_wh: np.ndarray, with_vertices: bool
    ) -> dict[str, np.ndarray]:
        """Network + SMPL + cameras for a batch of crops; float32/float64 numpy arrays per field."""
        x = crop.normalize_batch(crops_u8, self.device)
        with autocast(self.device, self.precision):
            rotmats, betas, cam = self.net(x)
        rotmats, betas, cam = rotmats.float(), betas.float(), cam.float()
        verts, joints = self.smpl(rotmats, betas)  # float32, outside autocast
        f, s = self.cfg.focal_length, self.cfg.crop_size
        dev = self.device
        c = torch.as_tensor(centers, dtype=torch.float32, device=dev)
        side = torch.as_tensor(sides, dtype=torch.float32, device=dev)
        wh = torch.as_tensor(img_wh, dtype=torch.float32, device=dev)
        kp_crop = camera.project_to_crop(joints, camera.crop_translation(cam, f, s), f, s)
        kp_img = camera.crop_to_image(kp_crop, c, side)
        focal = torch.tensor([camera.full_image_focal(f, s, w, h) for w, h in img_wh], dtype=torch.float32, device=dev)
        trans = camera.full_image_translation(cam, c, side, wh, focal)
        out = {
            "rotmats": rotmats,
            "betas": betas,
            "cam": cam,
            "joints3d": joints,
            "keypoints2d": kp_img,
            "translation": trans,
            "focal": focal,
        }
        if with_vertices:
            out["vertices"] = verts
        return {k: v.cpu().numpy() for k, v in out.items()}

    # -- PoseBackend --------------------------------------------------------------------------------------------

    def detect(self, images: list[np.ndarray], options: dict) -> list:
        if not images:
            return []
        boxes = self.boxes.rider_boxes(images, options)
        crops_u8, centers, sides = self.crops(images, boxes)
        img_wh = np.array([[img.shape[1], img.shape[0]] for img in images], dtype=np.float64)
        res = self.regress(crops_u8, centers, sides, img_wh, bool(options.get("vertices", False)))
        return [self.person(i, box, img_wh[i], res) for i, box in enumerate(boxes)]

    @staticmethod
    def person(i: int, box: PersonBox, wh: np.ndarray, res: dict[str, np.ndarray]):
        if not all(np.all(np.isfinite(v[i])) for v in res.values()):
            return FrameError("INFERENCE_FAILED", "the model produced non-finite values for this frame")
        kp = res["keypoints2d"][i][list(camera.OPENPOSE_TO_COCO17)]
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < wh[0]) & (kp[:, 1] >= 0) & (kp[:, 1] < wh[1])
        rot = res["rotmats"][i]

        def r(a, n):
            return np.round(a.astype(np.float64), n).tolist()

        person = {
            "score": round(float(box.score), 4),
            "bbox": [round(v, 2) for v in box.xywh],
            "keypoints": [
                [round(float(x), 2), round(float(y), 2), 1.0 if ok else 0.0] for (x, y), ok in zip(kp, inside)
            ],
            "boxSource": box.source,
            "smpl": {
                "rotation": "matrix",
                "globalOrient": r(rot[0], 5),
                "bodyPose": r(rot[1:], 5),
                "betas": r(res["betas"][i], 5),
            },
            "camera": {
                "translation": r(res["translation"][i], 4),
                "focalLength": round(float(res["focal"][i]), 2),
                "principalPoint": [float(wh[0]) / 2, float(wh[1]) / 2],
                "cropCamera": r(res["cam"][i], 5),
            },
            "joints3d": r(res["joints3d"][i], 4),
        }
        if "vertices" in res:
            person["vertices"] = r(res["vertices"][i], 4)
        return [person]
