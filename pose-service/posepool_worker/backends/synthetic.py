"""TEST DOUBLE: a fake pose backend for exercising the worker, the pool and the server without a model.

Model name ``synthetic`` (protocol.json marks it ``testDouble``); never a default. It poses exactly one
person per frame: a fixed COCO-17 stick figure scaled into the image's central box; each keypoint's score
comes from the image content (the mean brightness of a small patch around it), the person's score is the
mean of those, and the bbox is the keypoints' extent. Same image in, same result out.

Fault injection, from env ``POSE_SYNTHETIC_FAULTS``: comma-separated ``name`` or ``name=value``.
Batches (K) count this process's detect calls from 1; frames (I) are protocol frame indices.

=========================  ==============================================================================
fault                      effect
=========================  ==============================================================================
``startup_delay_ms=N``     sleep N ms in load, before ready
``startup_crash``          raise RuntimeError in load -> a structured worker/startupFailed, exit code 3
``exit_after_ready``       exit with code 3 right after sending worker/ready
``crash_on_batch=K``       SIGKILL itself on its K-th detect call
``crash_on_frame=I``       SIGKILL itself whenever a batch holds frame index I (so a retry crashes too)
``hang_on_batch=K``        sleep forever in its K-th detect call
``print_stdout``           on every detect: print(), os.write(1, ...) and C printf of garbage, all of which
                           must land on stderr with the protocol intact
``frame_error=I``          frame index I raises -> INFERENCE_FAILED for that frame only
``memory_error_on_batch=K``  raise MemoryError in the K-th detect -> OUT_OF_MEMORY on each of its frames
``cuda_oom_on_batch=K``    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB") in the K-th
                           detect -> OUT_OF_MEMORY on each of its frames
``infer_ms=N``             sleep N ms per frame (simulated model cost)
``once=PATH``              each fault fires at most once across all processes: it fires only if it can
                           create the marker file PATH + "." + fault name (O_EXCL)
=========================  ==============================================================================
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import numpy as np

from ..errors import FrameError, StartupError
from .base import COCO17_KEYPOINTS, COCO17_SKELETON, LoadContext, PoseBackend

log = logging.getLogger(__name__)

FAULTS_ENV = "POSE_SYNTHETIC_FAULTS"
# fault name -> value type (None: a flag without value)
FAULT_TYPES: dict[str, type | None] = {
    "startup_delay_ms": int,
    "startup_crash": None,
    "exit_after_ready": None,
    "crash_on_batch": int,
    "crash_on_frame": int,
    "hang_on_batch": int,
    "print_stdout": None,
    "frame_error": int,
    "memory_error_on_batch": int,
    "cuda_oom_on_batch": int,
    "infer_ms": int,
    "once": str,
}

# The stick figure, COCO-17 order, as (x, y) fractions of the figure's box.
TEMPLATE = np.array(
    [
        [0.50, 0.08],  # nose
        [0.54, 0.05],
        [0.46, 0.05],  # eyes (left, right)
        [0.58, 0.07],
        [0.42, 0.07],  # ears
        [0.68, 0.22],
        [0.32, 0.22],  # shoulders
        [0.78, 0.38],
        [0.22, 0.38],  # elbows
        [0.82, 0.53],
        [0.18, 0.53],  # wrists
        [0.62, 0.55],
        [0.38, 0.55],  # hips
        [0.64, 0.76],
        [0.36, 0.76],  # knees
        [0.65, 0.97],
        [0.35, 0.97],  # ankles
    ],
    dtype=np.float64,
)
PATCH = 4  # half-size of the brightness patch around each keypoint


def parse_faults(spec: str | None) -> dict[str, bool | int | str]:
    faults: dict[str, bool | int | str] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if name not in FAULT_TYPES:
            raise StartupError(
                "InvalidFaults",
                f"unknown synthetic fault {name!r} in {FAULTS_ENV}",
                f"use names from: {', '.join(FAULT_TYPES)}",
            )
        kind = FAULT_TYPES[name]
        if kind is None:
            if sep:
                raise StartupError("InvalidFaults", f"fault {name!r} takes no value", f"write just {name}")
            faults[name] = True
            continue
        if not sep or not value.strip():
            raise StartupError("InvalidFaults", f"fault {name!r} needs a value", f"write {name}=VALUE")
        try:
            faults[name] = kind(value.strip())
        except ValueError:
            raise StartupError(
                "InvalidFaults", f"fault {name!r} needs an integer, got {value!r}", f"write {name}=N"
            ) from None
    return faults


def pose_image(image: np.ndarray) -> dict:
    """The synthetic person for one HxWx3 RGB image."""
    h, w = image.shape[:2]
    box_x, box_y, box_w, box_h = 0.2 * w, 0.1 * h, 0.6 * w, 0.8 * h
    xy = TEMPLATE * [box_w, box_h] + [box_x, box_y]
    gray = image.mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    keypoints = []
    for x, y in xy:
        cx, cy = int(min(max(x, 0), w - 1)), int(min(max(y, 0), h - 1))
        patch = gray[max(cy - PATCH, 0) : cy + PATCH + 1, max(cx - PATCH, 0) : cx + PATCH + 1]
        score = 0.25 + 0.75 * float(patch.mean()) / 255.0
        keypoints.append([round(float(x), 2), round(float(y), 2), round(score, 4)])
    xs, ys = xy[:, 0], xy[:, 1]
    bbox = [
        round(float(xs.min()), 2),
        round(float(ys.min()), 2),
        round(float(xs.max() - xs.min()), 2),
        round(float(ys.max() - ys.min()), 2),
    ]
    score = round(float(np.mean([k[2] for k in keypoints])), 4)
    return {"score": score, "bbox": bbox, "keypoints": keypoints}


class SyntheticBackend(PoseBackend):
    """TEST DOUBLE (see the module docstring): a stick figure per frame, plus env-driven fault injection."""

    keypoints = COCO17_KEYPOINTS
    skeleton = COCO17_SKELETON
    extras: list[str] = []

    def __init__(self, faults: dict[str, bool | int | str]):
        self.faults = faults
        self.calls = 0

    @classmethod
    def load(cls, ctx: LoadContext) -> SyntheticBackend:
        backend = cls(parse_faults(os.environ.get(FAULTS_ENV)))
        if backend.faults:
            log.warning("synthetic TEST DOUBLE with faults: %s", backend.faults)
        delay = backend.faults.get("startup_delay_ms")
        if delay and backend._fire("startup_delay_ms"):
            time.sleep(int(delay) / 1000.0)
        if backend.faults.get("startup_crash") and backend._fire("startup_crash"):
            raise RuntimeError("synthetic startup_crash fault")
        return backend

    def on_ready(self) -> None:
        if self.faults.get("exit_after_ready") and self._fire("exit_after_ready"):
            log.warning("fault exit_after_ready: exiting with code 3")
            _die(exit_code=3)

    def _fire(self, name: str) -> bool:
        """Whether fault ``name`` fires now (with once=PATH: only if its marker file did not exist yet)."""
        once = self.faults.get("once")
        if not once:
            return True
        try:
            os.close(os.open(f"{once}.{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            return False

    def _on_batch(self, name: str) -> bool:
        return self.faults.get(name) == self.calls and self._fire(name)

    def detect(self, images: list[np.ndarray], options: dict) -> list:
        self.calls += 1
        indices = list(options.get("indices") or range(len(images)))
        f = self.faults
        if f.get("print_stdout") and self._fire("print_stdout"):
            _print_garbage()
        if self._on_batch("crash_on_batch"):
            log.warning("fault crash_on_batch=%d: SIGKILL", self.calls)
            _die()
        if self._on_batch("hang_on_batch"):
            log.warning("fault hang_on_batch=%d: hanging", self.calls)
            while True:
                time.sleep(3600)
        if self._on_batch("memory_error_on_batch"):
            raise MemoryError("synthetic memory_error_on_batch fault")
        if self._on_batch("cuda_oom_on_batch"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if "crash_on_frame" in f and f["crash_on_frame"] in indices and self._fire("crash_on_frame"):
            log.warning("fault crash_on_frame=%d: SIGKILL", f["crash_on_frame"])
            _die()
        infer_s = int(f.get("infer_ms", 0)) / 1000.0
        out: list = []
        for image, index in zip(images, indices):
            if infer_s:
                time.sleep(infer_s)
            try:
                if f.get("frame_error") == index and self._fire("frame_error"):
                    raise RuntimeError(f"synthetic frame_error fault on frame {index}")
                out.append([pose_image(image)])
            except RuntimeError as err:
                out.append(FrameError("INFERENCE_FAILED", str(err)))
        return out


def _print_garbage() -> None:
    print("synthetic print_stdout fault: print() text that must not reach the protocol stream")
    sys.stdout.flush()
    os.write(1, b"Content-Length: 7\r\n\r\ngarbage synthetic print_stdout fault: os.write(1)\n")
    try:  # C-level stdout, as a native library would write it
        import ctypes

        libc = ctypes.CDLL(None)
        libc.printf(b"synthetic print_stdout fault: C printf\n")
        libc.fflush(None)
    except (OSError, AttributeError):
        pass


def _die(exit_code: int | None = None) -> None:
    sys.stderr.flush()
    if exit_code is None and hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # the signal is delivered asynchronously
    os._exit(exit_code if exit_code is not None else 137)
