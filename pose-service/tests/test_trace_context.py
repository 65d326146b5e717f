"""The worker's span of a detect call (protocol.json traceContext): W3C traceparent parsing, the span it
reports (same trace, the server's span as parent, its own id, ordered wall-clock times), and nothing at all
without a sampled traceparent. In process with a scripted backend, then over the real worker's stdio."""

import os
import re
import time

import pytest
import torch

from conftest import jpeg_frame
from posepool_worker import protocol
from posepool_worker.backends.base import PoseBackend
from posepool_worker.rpc import RpcError
from posepool_worker.service import WorkerService
from posepool_worker.trace_context import DetectSpan, new_span_id, parse_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SAMPLED = f"00-{TRACE_ID}-{PARENT_ID}-01"
PERSON = {"score": 0.5, "bbox": [1, 2, 3, 4], "keypoints": [[1.0, 2.0, 0.5]] * 17}


class Slow(PoseBackend):
    """One person per image, after a pause (so the span has a measurable length)."""

    @classmethod
    def load(cls, ctx):
        raise NotImplementedError

    def detect(self, images, options):
        time.sleep(0.01)
        return [[PERSON] for _ in images]


def service() -> WorkerService:
    return WorkerService(Slow(), "scripted", torch.device("cpu"), torch)


def test_protocol_json_names_the_param_the_result_field_and_the_span():
    assert protocol.TRACE_CONTEXT == {"param": "traceparent", "resultField": "span", "spanName": "worker.detect"}


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (SAMPLED, (TRACE_ID, PARENT_ID, 1)),
        (f"00-{TRACE_ID}-{PARENT_ID}-00", (TRACE_ID, PARENT_ID, 0)),
        (f"01-{TRACE_ID}-{PARENT_ID}-01-future-field", (TRACE_ID, PARENT_ID, 1)),  # later versions may add fields
        (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", None),  # version 00 has exactly four
        (f"ff-{TRACE_ID}-{PARENT_ID}-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-{PARENT_ID}-01", None),  # all-zero ids are invalid
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),
        (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", None),  # lowercase hex only
        (f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_traceparent(value, parsed):
    assert parse_traceparent(value) == parsed


def test_new_span_ids_are_16_hex_digits_and_differ():
    ids = {new_span_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) and i != "0" * 16 for i in ids)


def test_detect_with_a_sampled_traceparent_reports_its_own_span_as_the_child():
    before = time.time_ns()
    result = service().detect({"requestId": "r", "frames": [jpeg_frame(0), jpeg_frame(1)], "traceparent": SAMPLED})
    after = time.time_ns()
    span = result["span"]
    assert set(span) == {
        "name",
        "traceId",
        "spanId",
        "parentSpanId",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
    }
    assert span["name"] == "worker.detect"
    assert span["traceId"] == TRACE_ID and span["parentSpanId"] == PARENT_ID
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"]) and span["spanId"] != PARENT_ID
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    assert before <= start < end <= after
    assert end - start >= 10_000_000  # the backend's 10 ms are inside it
    attrs = span["attributes"]
    assert attrs["posepool.frames"] == 2 and attrs["posepool.frames_failed"] == 0
    assert attrs["posepool.model"] == "scripted" and attrs["posepool.device"] == "cpu"
    assert attrs["process.pid"] == os.getpid()
    assert attrs["posepool.infer_ms"] >= 10 and attrs["posepool.decode_ms"] >= 0
    assert all(isinstance(v, (str, int, float, bool)) for v in attrs.values())
    assert [f["index"] for f in result["frames"]] == [0, 1]


def test_each_call_gets_a_fresh_span_id():
    svc = service()
    params = {"requestId": "r", "frames": [jpeg_frame(0)], "traceparent": SAMPLED}
    ids = {svc.detect(params)["span"]["spanId"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "traceparent",
    [None, f"00-{TRACE_ID}-{PARENT_ID}-00", "not-a-traceparent", f"00-{'0' * 32}-{PARENT_ID}-01"],
    ids=["absent", "not-sampled", "malformed", "invalid-id"],
)
def test_no_span_without_a_sampled_valid_traceparent(traceparent):
    params = {"requestId": "r", "frames": [jpeg_frame(0)]}
    if traceparent is not None:
        params["traceparent"] = traceparent
    result = service().detect(params)
    assert set(result) == {"frames", "timing"}
    assert DetectSpan.start(traceparent) is None


def test_a_traceparent_that_is_not_a_string_is_invalid_params():
    with pytest.raises(RpcError) as info:
        service().detect({"requestId": "r", "frames": [], "traceparent": 7})
    assert info.value.code == protocol.RPC_ERROR_CODES["INVALID_PARAMS"]


def test_over_the_wire(synthetic_worker):
    """The real worker process: the span comes back in the result; without traceparent, no span field."""
    traced = synthetic_worker.call("detect", {"requestId": "t", "frames": [jpeg_frame(0)], "traceparent": SAMPLED})
    span = traced["span"]
    assert span["traceId"] == TRACE_ID and span["parentSpanId"] == PARENT_ID
    assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    assert span["attributes"]["process.pid"] == synthetic_worker.proc.pid
    assert span["attributes"]["posepool.model"] == "synthetic"
    plain = synthetic_worker.call("detect", {"requestId": "t", "frames": [jpeg_frame(0)]})
    assert "span" not in plain
