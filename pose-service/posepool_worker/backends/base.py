"""The interface every pose backend implements (MoveNet, ViTPose, HMR2, the synthetic test double).

A backend is loaded once per worker process (``load``) and then poses batches of frames (``detect``).
Its heavy imports (torch, model code) live in its own module, imported only when that backend is chosen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import protocol
from ..errors import FrameError, StartupError

if TYPE_CHECKING:  # heavy modules are imported by the bootstrap's guard, not here
    import numpy as np
    import torch

# Convenience for COCO-17 backends: names and skeleton exactly as protocol.json lists them.
COCO17_KEYPOINTS, COCO17_SKELETON = protocol.keypoint_set("coco17")

Person = dict[str, Any]
"""{"score": float, "bbox": [x, y, w, h], "keypoints": [[x, y, score] * K], ...model extras} in image pixels."""


def require_served(backend: str, model: str, served: Collection[str]) -> None:
    """A StartupError (UnknownModel) where ``model`` is not among the names ``served`` by ``backend``."""
    if model not in served:
        raise StartupError(
            "UnknownModel",
            f"the {backend} backend does not serve {model!r}",
            f"set POSE_MODEL to one of: {', '.join(served)}",
        )


@dataclass
class LoadContext:
    model: str  # protocol.json model name, e.g. "movenet-thunder"
    device: torch.device  # the device to run on (already resolved: "auto" never reaches a backend)
    threads: int  # torch intra-op threads (already applied by the core)
    models_dir: Path  # POSE_MODELS_DIR (default pose-service/.models), for downloaded weights
    repo_root: Path  # the repository checkout, e.g. for node_modules lookups


class PoseBackend(ABC):
    keypoints: list[str] = COCO17_KEYPOINTS
    skeleton: list[tuple[int, int]] = COCO17_SKELETON
    extras: list[str] = []  # extra per-person fields this model adds (e.g. HMR2: joints3d, smpl, camera)

    @classmethod
    @abstractmethod
    def load(cls, ctx: LoadContext) -> PoseBackend:
        """Load weights once. Raise errors.StartupError for missing/corrupt files (type ModelFilesMissing, a hint)."""

    @abstractmethod
    def detect(self, images: list[np.ndarray], options: dict) -> list[list[Person] | FrameError]:
        """Pose a batch.

        images: HxWx3 uint8 RGB, C-contiguous, upright. Returns one entry per image, in order: a list of persons
        (possibly empty) or a FrameError for that frame alone. options: {"tracking": bool (default True),
        "vertices": bool, "flipTest": bool} as the request gave them (defaults filled in), plus "indices" (the
        frames' protocol indices, aligned with images) and "requestId" (for log lines). Numpy values in the
        persons are fine (the core converts them; NaN/Infinity become null). An exception escaping detect()
        fails the whole batch (the core maps MemoryError / CUDA OOM to per-frame OUT_OF_MEMORY, anything else
        to INFERENCE_FAILED).
        """

    def on_ready(self) -> None:  # noqa: B027 - an optional hook: by default it does nothing
        """Called once, right after the worker has sent worker/ready. Optional; the default does nothing."""
