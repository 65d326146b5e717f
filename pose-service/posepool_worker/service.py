"""The worker's three methods over one loaded backend: ``detect``, ``health``, ``shutdown``.

``detect`` decodes each frame (a bad frame gets FRAME_DECODE_FAILED and stays out of the batch), poses the
good images in one backend call, and merges the results back in request order. A failure of the whole
backend call becomes a per-frame error on every frame that reached it: OUT_OF_MEMORY for host/GPU memory
exhaustion (with a hint), INFERENCE_FAILED for anything else (traceback to stderr).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from typing import Any, Callable

from .backends.base import PoseBackend
from .errors import FrameError
from .frames import decode_frame
from .jsonable import to_jsonable
from .rpc import invalid_params
from .trace_context import PARAM as TRACEPARENT
from .trace_context import RESULT_FIELD as SPAN_FIELD
from .trace_context import DetectSpan

log = logging.getLogger("posepool_worker.service")

DEFAULT_OPTIONS = {"tracking": True, "vertices": False, "flipTest": False}
OOM_HINT = "lower POSE_BATCH_SIZE or POSE_WORKERS"


def is_out_of_memory(err: BaseException, torch=None) -> bool:
    if isinstance(err, MemoryError):
        return True
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(err, oom_type):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def rss_bytes() -> int:
    """Current resident set size (Linux /proc/self/statm); the peak RSS where that is absent (macOS); 0 where
    neither is available (Windows without the resource module)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


class WorkerService:
    def __init__(self, backend: PoseBackend, model: str, device, torch):
        self.backend = backend
        self.model = model
        self.device = device
        self.torch = torch
        self.stopping = False  # set by shutdown: the connection stops after sending its reply
        self.started = time.monotonic()
        self.batches = 0
        self.frames = 0

    def handlers(self) -> dict[str, Callable[[Any], Any]]:
        from . import protocol

        m = protocol.METHODS
        return {m["detect"]: self.detect, m["health"]: self.health, m["shutdown"]: self.shutdown}

    # ---- detect ------------------------------------------------------------------------------------
    def detect(self, params: Any) -> dict:
        request_id, frames, options, traceparent = _validate_detect(params)
        span = DetectSpan.start(traceparent)
        t0 = time.perf_counter()
        outcomes: list[Any] = [None] * len(frames)
        images, positions = [], []
        for pos, payload in enumerate(frames):
            try:
                images.append(decode_frame(payload))
                positions.append(pos)
            except FrameError as err:
                outcomes[pos] = err
        t1 = time.perf_counter()
        if images:
            batch_options = {**options, "indices": [frames[p]["index"] for p in positions], "requestId": request_id}
            for pos, out in zip(positions, self._infer(images, batch_options, request_id)):
                outcomes[pos] = out
        t2 = time.perf_counter()

        results = []
        failed = 0
        for payload, out in zip(frames, outcomes):
            if isinstance(out, FrameError):
                failed += 1
                results.append({"index": payload["index"], "persons": [], "error": out.to_json()})
            else:
                results.append({"index": payload["index"], "persons": out})
        self.batches += 1
        self.frames += len(frames)
        timing = {"decodeMs": _ms(t1 - t0), "inferMs": _ms(t2 - t1), "totalMs": _ms(time.perf_counter() - t0)}
        log.debug(
            "detect req=%s frames=%d failed=%d decode=%.1fms infer=%.1fms%s",
            request_id,
            len(frames),
            failed,
            timing["decodeMs"],
            timing["inferMs"],
            f" trace={span.trace_id} span={span.span_id}" if span else "",
        )
        result: dict = {"frames": results, "timing": timing}
        if span:
            result[SPAN_FIELD] = span.finish(
                {
                    "posepool.frames": len(frames),
                    "posepool.frames_failed": failed,
                    "posepool.decode_ms": timing["decodeMs"],
                    "posepool.infer_ms": timing["inferMs"],
                    "posepool.model": self.model,
                    "posepool.device": str(self.device),
                    "process.pid": os.getpid(),
                }
            )
        return result

    def _infer(self, images: list, options: dict, request_id: str) -> list:
        """One backend call; always returns one entry per image: a JSON-ready person list or a FrameError."""
        try:
            outputs = self.backend.detect(images, options)
            if not isinstance(outputs, (list, tuple)) or len(outputs) != len(images):
                got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
                raise RuntimeError(f"backend returned {got} results for {len(images)} images")
        except FrameError as err:
            return [err] * len(images)
        except Exception as err:
            return [self._batch_failure(err, len(images), request_id)] * len(images)
        merged = []
        for out in outputs:
            if isinstance(out, FrameError):
                merged.append(out)
                continue
            try:
                if not isinstance(out, (list, tuple)):
                    raise TypeError(f"backend returned {type(out).__name__} for a frame, expected a person list")
                merged.append(to_jsonable(list(out)))
            except TypeError as err:
                log.error("req=%s: unusable backend output: %s", request_id, err)
                merged.append(FrameError("INFERENCE_FAILED", str(err)))
        return merged

    def _batch_failure(self, err: BaseException, count: int, request_id: str) -> FrameError:
        if is_out_of_memory(err, self.torch):
            where = "GPU" if self.device.type == "cuda" else "host"
            log.error("req=%s: out of %s memory on a batch of %d: %s", request_id, where, count, err)
            if self.device.type == "cuda":
                try:
                    self.torch.cuda.empty_cache()
                except Exception:
                    pass
            detail = str(err).strip() or type(err).__name__
            return FrameError(
                "OUT_OF_MEMORY", f"out of {where} memory on a batch of {count} frames ({detail}); {OOM_HINT}"
            )
        log.error("req=%s: inference failed on a batch of %d:\n%s", request_id, count, traceback.format_exc())
        return FrameError("INFERENCE_FAILED", f"{type(err).__name__}: {err}")

    # ---- health / shutdown -------------------------------------------------------------------------
    def health(self, params: Any = None) -> dict:
        gpu = gpu_max = None
        if self.device.type == "cuda":
            gpu = int(self.torch.cuda.memory_allocated(self.device))
            gpu_max = int(self.torch.cuda.max_memory_allocated(self.device))
        return {
            "pid": os.getpid(),
            "model": self.model,
            "device": str(self.device),
            "uptimeMs": int((time.monotonic() - self.started) * 1000),
            "rssBytes": rss_bytes(),
            "gpuMemoryBytes": gpu,
            "gpuMaxMemoryBytes": gpu_max,
            "batches": self.batches,
            "frames": self.frames,
        }

    def shutdown(self, params: Any = None) -> dict:
        self.stopping = True  # the reply leaves first; then the serve loop returns and the process exits 0
        return {"ok": True}


def _validate_detect(params: Any) -> tuple[str, list, dict, str | None]:
    if not isinstance(params, dict):
        raise invalid_params("detect params must be an object {requestId, frames, options?, traceparent?}")
    request_id = params.get("requestId", "-")
    if not isinstance(request_id, str):
        raise invalid_params("requestId must be a string")
    frames = params.get("frames")
    if not isinstance(frames, list):
        raise invalid_params("frames must be an array")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise invalid_params(f"frames[{i}] must be an object")
        index = frame.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise invalid_params(f"frames[{i}].index must be a non-negative integer")
    options = params.get("options") or {}
    if not isinstance(options, dict):
        raise invalid_params("options must be an object")
    traceparent = params.get(TRACEPARENT)
    if traceparent is not None and not isinstance(traceparent, str):
        raise invalid_params(f"{TRACEPARENT} must be a string")
    return request_id, frames, {**DEFAULT_OPTIONS, **options}, traceparent
