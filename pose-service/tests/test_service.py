"""WorkerService in process, with scripted backends: merging, per-frame errors, OOM mapping, health."""

import math

import numpy as np
import pytest
import torch

from conftest import corrupt_jpeg_frame, jpeg_frame
from posepool_worker.backends.base import PoseBackend
from posepool_worker.errors import FrameError
from posepool_worker.rpc import RpcError
from posepool_worker.service import WorkerService, is_out_of_memory

PERSON = {"score": 0.5, "bbox": [1, 2, 3, 4], "keypoints": [[1.0, 2.0, 0.5]] * 17}


class Scripted(PoseBackend):
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.seen = []

    @classmethod
    def load(cls, ctx):
        raise NotImplementedError

    def detect(self, images, options):
        self.seen.append((len(images), dict(options)))
        return self.behaviour(images, options)


def service(behaviour):
    return WorkerService(Scripted(behaviour), "scripted", torch.device("cpu"), torch)


def test_results_come_back_in_request_order_with_decode_failures_in_place():
    svc = service(lambda images, options: [[{**PERSON, "score": i / 10}] for i in options["indices"]])
    frames = [jpeg_frame(10), corrupt_jpeg_frame(11), jpeg_frame(12), corrupt_jpeg_frame(13)]
    result = svc.detect({"requestId": "r", "frames": frames})
    assert [f["index"] for f in result["frames"]] == [10, 11, 12, 13]
    assert [f["persons"][0]["score"] for f in result["frames"][::2]] == [1.0, 1.2]
    for bad in result["frames"][1::2]:
        assert bad["persons"] == [] and bad["error"]["code"] == "FRAME_DECODE_FAILED"
    assert "error" not in result["frames"][0]
    assert svc.backend.seen[0][0] == 2  # only the good images, in one call
    assert svc.backend.seen[0][1]["indices"] == [10, 12]
    assert svc.backend.seen[0][1]["tracking"] is True and svc.backend.seen[0][1]["requestId"] == "r"
    assert set(result["timing"]) == {"decodeMs", "inferMs", "totalMs"}
    assert result["timing"]["totalMs"] >= result["timing"]["decodeMs"]


def test_backend_not_called_when_no_frame_decodes():
    svc = service(lambda images, options: pytest.fail("called with nothing to do"))
    result = svc.detect({"requestId": "r", "frames": [corrupt_jpeg_frame(0)]})
    assert result["frames"][0]["error"]["code"] == "FRAME_DECODE_FAILED"


def test_per_frame_frame_error_from_backend():
    svc = service(lambda images, options: [[PERSON], FrameError("INFERENCE_FAILED", "bad crop")])
    result = svc.detect({"requestId": "r", "frames": [jpeg_frame(0), jpeg_frame(1)]})
    assert result["frames"][0]["persons"] == [PERSON]
    assert result["frames"][1] == {
        "index": 1,
        "persons": [],
        "error": {"code": "INFERENCE_FAILED", "message": "bad crop"},
    }


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        torch.cuda.OutOfMemoryError("CUDA out of memory."),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:75] DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 123 bytes. Error code 12 (Cannot allocate memory) out of memory"
        ),
    ],
)
def test_out_of_memory_maps_to_per_frame_out_of_memory_with_hint(exc):
    def boom(images, options):
        raise exc

    svc = service(boom)
    result = svc.detect({"requestId": "r", "frames": [jpeg_frame(0), corrupt_jpeg_frame(1), jpeg_frame(2)]})
    codes = [f["error"]["code"] for f in result["frames"]]
    assert codes == ["OUT_OF_MEMORY", "FRAME_DECODE_FAILED", "OUT_OF_MEMORY"]
    assert "lower POSE_BATCH_SIZE or POSE_WORKERS" in result["frames"][0]["error"]["message"]


def test_other_exceptions_map_to_inference_failed():
    def boom(images, options):
        raise ValueError("shape mismatch")

    result = service(boom).detect({"requestId": "r", "frames": [jpeg_frame(0), jpeg_frame(1)]})
    assert [f["error"] for f in result["frames"]] == [
        {"code": "INFERENCE_FAILED", "message": "ValueError: shape mismatch"}
    ] * 2


def test_wrong_number_of_results_is_inference_failed_not_a_misaligned_merge():
    result = service(lambda images, options: [[PERSON]]).detect(
        {"requestId": "r", "frames": [jpeg_frame(0), jpeg_frame(1)]}
    )
    assert {f["error"]["code"] for f in result["frames"]} == {"INFERENCE_FAILED"}
    assert "1 results for 2 images" in result["frames"][0]["error"]["message"]


def test_numpy_values_become_json_and_nan_becomes_null():
    person = {
        "score": np.float32(0.75),
        "bbox": np.array([1, 2, 3, 4]),
        "keypoints": np.array([[1.5, 2.5, math.nan]] * 17),
        "joints3d": torch.zeros(2, 3),
    }
    result = service(lambda images, options: [[person]]).detect({"requestId": "r", "frames": [jpeg_frame(0)]})
    out = result["frames"][0]["persons"][0]
    assert out["score"] == 0.75 and out["bbox"] == [1, 2, 3, 4]
    assert out["keypoints"][0] == [1.5, 2.5, None]
    assert out["joints3d"] == [[0.0] * 3] * 2


@pytest.mark.parametrize(
    "params",
    [
        None,
        [],
        {"frames": "x"},
        {"frames": [1]},
        {"frames": [{"encoding": "jpeg"}]},
        {"frames": [{"index": -1}]},
        {"frames": [{"index": True}]},
        {"frames": [], "options": 3},
        {"frames": [], "requestId": 5},
    ],
)
def test_malformed_detect_params_are_invalid_params(params):
    with pytest.raises(RpcError) as info:
        service(lambda images, options: []).detect(params)
    assert info.value.code == -32602


def test_options_pass_through_with_defaults():
    svc = service(lambda images, options: [[]])
    svc.detect({"requestId": "r", "frames": [jpeg_frame(0)], "options": {"tracking": False, "vertices": True}})
    options = svc.backend.seen[0][1]
    assert (options["tracking"], options["vertices"], options["flipTest"]) == (False, True, False)


def test_health_counts_batches_and_frames_and_reports_memory():
    svc = service(lambda images, options: [[] for _ in images])
    svc.detect({"requestId": "r", "frames": [jpeg_frame(0), corrupt_jpeg_frame(1)]})
    svc.detect({"requestId": "r", "frames": [jpeg_frame(2)]})
    h = svc.health()
    assert h["batches"] == 2 and h["frames"] == 3
    assert h["model"] == "scripted" and h["device"] == "cpu"
    assert h["gpuMemoryBytes"] is None and h["gpuMaxMemoryBytes"] is None
    assert h["rssBytes"] > 10 * 1024 * 1024


def test_shutdown_replies_ok_and_flags_stop():
    svc = service(lambda images, options: [])
    assert svc.stopping is False
    assert svc.shutdown() == {"ok": True}
    assert svc.stopping is True


def test_is_out_of_memory_is_not_fooled_by_other_runtime_errors():
    assert not is_out_of_memory(RuntimeError("size mismatch"), torch)
    assert is_out_of_memory(MemoryError(), None)
