"""The real worker process over its stdio: ready, detect, per-frame errors, stdout isolation, OOM, health,
shutdown, exit on stdin EOF, and the synthetic faults that the TypeScript pool relies on."""

import base64
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from conftest import FIXTURES, SERVICE_DIR, corrupt_jpeg_frame, jpeg_frame
from posepool_worker import protocol

COCO = protocol.KEYPOINT_SETS["coco17"]


def test_ready_message(synthetic_worker):
    """The shared worker runs with --device auto --threads 2."""
    r = synthetic_worker.ready
    assert r["pid"] == synthetic_worker.proc.pid
    assert r["python"] == sys.executable and r["pythonVersion"].startswith("3.")
    assert r["model"] == {"name": "synthetic", "keypoints": COCO["names"], "skeleton": COCO["skeleton"], "extras": []}
    assert r["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu") and r["threads"] == 2
    assert set(r["versions"]) >= {"python", "torch", "numpy", "cv2"}
    assert r["versions"]["cv2"] == cv2.__version__ and r["versions"]["numpy"] == np.__version__
    assert isinstance(r["loadMs"], int) and r["loadMs"] > 0


def test_detect_batch_with_a_corrupt_jpeg_among_good_frames(synthetic_worker):
    frames = [jpeg_frame(0), jpeg_frame(1, FIXTURES / "basketball1.jpg"), corrupt_jpeg_frame(2), jpeg_frame(3)]
    result = synthetic_worker.call("detect", {"requestId": "t1", "frames": frames})
    assert [f["index"] for f in result["frames"]] == [0, 1, 2, 3]
    bad = result["frames"][2]
    assert bad["persons"] == [] and bad["error"]["code"] == "FRAME_DECODE_FAILED"
    for good in (result["frames"][0], result["frames"][1], result["frames"][3]):
        assert "error" not in good and len(good["persons"]) == 1
        assert len(good["persons"][0]["keypoints"]) == 17
    assert result["frames"][0]["persons"] == result["frames"][3]["persons"]  # same image, same pose
    assert result["frames"][0]["persons"] != result["frames"][1]["persons"]  # other image, other pose
    h, w = cv2.imread(str(FIXTURES / "messi5.jpg")).shape[:2]
    x, y, bw, bh = result["frames"][0]["persons"][0]["bbox"]
    assert x >= 0 and x + bw <= w and y >= 0 and y + bh <= h
    assert result["timing"]["totalMs"] >= result["timing"]["inferMs"]


def test_rgb24_and_file_encodings_over_the_wire(synthetic_worker, tmp_path):
    rgb = cv2.cvtColor(cv2.imread(str(FIXTURES / "messi5.jpg")), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    frames = [
        {"index": 0, "encoding": "rgb24", "width": w, "height": h, "data": base64.b64encode(rgb.tobytes()).decode()},
        {"index": 1, "encoding": "file", "width": w, "height": h, "path": str(FIXTURES / "messi5.jpg")},
        {"index": 2, "encoding": "rgb24", "width": w, "height": h, "data": base64.b64encode(b"\0" * 10).decode()},
    ]
    result = synthetic_worker.call("detect", {"requestId": "t2", "frames": frames})
    assert len(result["frames"][0]["persons"]) == 1 and len(result["frames"][1]["persons"]) == 1
    assert result["frames"][2]["error"]["code"] == "FRAME_DECODE_FAILED"


def test_protocol_errors_over_the_wire(synthetic_worker):
    reply = synthetic_worker.request("nope")
    assert reply["error"]["code"] == protocol.RPC_ERROR_CODES["METHOD_NOT_FOUND"]
    reply = synthetic_worker.request("detect", {"frames": "not a list"})
    assert reply["error"]["code"] == protocol.RPC_ERROR_CODES["INVALID_PARAMS"]
    synthetic_worker.send_raw(b"Content-Length: 5\r\n\r\n{oops")
    reply = synthetic_worker.recv()
    assert reply["id"] is None and reply["error"]["code"] == protocol.RPC_ERROR_CODES["PARSE_ERROR"]
    synthetic_worker.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}})  # ignored
    assert synthetic_worker.call("health")["pid"] == synthetic_worker.proc.pid  # and still serving


def test_health_fields(synthetic_worker):
    before = synthetic_worker.call("health")
    synthetic_worker.call("detect", {"requestId": "t3", "frames": [jpeg_frame(0), jpeg_frame(1)]})
    h = synthetic_worker.call("health")
    assert set(h) == {
        "pid",
        "model",
        "device",
        "uptimeMs",
        "rssBytes",
        "gpuMemoryBytes",
        "gpuMaxMemoryBytes",
        "batches",
        "frames",
    }
    assert h["pid"] == synthetic_worker.proc.pid and h["model"] == "synthetic"
    assert h["device"] == synthetic_worker.ready["device"]
    assert h["batches"] == before["batches"] + 1 and h["frames"] == before["frames"] + 2
    assert h["uptimeMs"] >= before["uptimeMs"]
    with open(f"/proc/{h['pid']}/status") as f:
        vmrss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
    assert abs(h["rssBytes"] - vmrss) < 0.2 * vmrss
    if h["device"] == "cpu":
        assert h["gpuMemoryBytes"] is None and h["gpuMaxMemoryBytes"] is None
    else:
        assert isinstance(h["gpuMemoryBytes"], int) and h["gpuMaxMemoryBytes"] >= h["gpuMemoryBytes"]


def test_shutdown_replies_then_exits_zero(spawn_worker):
    w = spawn_worker()
    w.wait_ready()
    assert w.call("shutdown") == {"ok": True}
    assert w.wait(5) == 0
    assert w.recv() is None  # nothing after the reply


def test_stdout_isolation_with_print_stdout_fault(spawn_worker):
    w = spawn_worker(faults="print_stdout")
    w.wait_ready()
    for i in range(3):
        result = w.call("detect", {"requestId": f"p{i}", "frames": [jpeg_frame(i)]})
        assert len(result["frames"][0]["persons"]) == 1
    w.call("shutdown")
    w.wait(5)
    stderr = w.stderr_text()
    assert stderr.count("print() text that must not reach the protocol stream") == 3
    assert stderr.count("garbage synthetic print_stdout fault: os.write(1)") == 3
    assert stderr.count("synthetic print_stdout fault: C printf") == 3
    assert b"garbage" not in w.stdout_bytes and b"print_stdout" not in w.stdout_bytes
    assert w.stdout_bytes.startswith(b"Content-Length: ")


def test_frame_error_and_oom_faults_fail_frames_not_the_worker(spawn_worker):
    w = spawn_worker(faults="frame_error=1,memory_error_on_batch=2,cuda_oom_on_batch=3")
    w.wait_ready()
    # batch 1: frame 1 raises inside the model -> INFERENCE_FAILED for that frame only
    result = w.call("detect", {"requestId": "fe", "frames": [jpeg_frame(0), jpeg_frame(1), jpeg_frame(2)]})
    assert [bool(f["persons"]) for f in result["frames"]] == [True, False, True]
    assert result["frames"][1]["error"]["code"] == "INFERENCE_FAILED"
    assert "error" not in result["frames"][0] and "error" not in result["frames"][2]
    # batch 2: MemoryError, batch 3: CUDA OOM -> OUT_OF_MEMORY with a hint on every frame of the batch
    for batch in (2, 3):
        result = w.call("detect", {"requestId": f"oom{batch}", "frames": [jpeg_frame(0), jpeg_frame(4)]})
        for f in result["frames"]:
            assert f["persons"] == [] and f["error"]["code"] == "OUT_OF_MEMORY"
            assert "lower POSE_BATCH_SIZE or POSE_WORKERS" in f["error"]["message"]
    # batch 4: the worker is fine
    result = w.call("detect", {"requestId": "after", "frames": [jpeg_frame(0)]})
    assert len(result["frames"][0]["persons"]) == 1 and "error" not in result["frames"][0]
    assert w.call("health")["batches"] == 4


def test_exits_within_2s_of_stdin_eof_mid_batch(spawn_worker):
    w = spawn_worker(faults="infer_ms=60000")
    w.wait_ready()
    w.send({"jsonrpc": "2.0", "id": 1, "method": "detect", "params": {"requestId": "slow", "frames": [jpeg_frame(0)]}})
    time.sleep(0.3)  # the batch is now sleeping inside the backend
    assert w.proc.poll() is None
    t0 = time.monotonic()
    w.proc.stdin.close()
    assert w.wait(2) == 0
    assert time.monotonic() - t0 < 2
    assert "stdin closed" in w.stderr_text()


def test_exits_when_its_parent_is_killed_with_sigkill(tmp_path):
    """A parent process holds the worker's stdin; SIGKILL it and the orphaned worker must be gone in 2 s."""
    parent_code = """
import json, os, subprocess, sys, time
service_dir, image = sys.argv[1], sys.argv[2]
p = subprocess.Popen([sys.executable, '-m', 'posepool_worker', '--model', 'synthetic', '--device', 'cpu',
                      '--threads', '1'], cwd=service_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     env={**os.environ, 'POSE_SYNTHETIC_FAULTS': 'hang_on_batch=1'})
os.read(p.stdout.fileno(), 65536)  # worker/ready
frame = {'index': 0, 'encoding': 'file', 'path': image, 'width': 0, 'height': 0}
body = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'detect',
                   'params': {'requestId': 'x', 'frames': [frame]}}).encode()
p.stdin.write(b'Content-Length: %d\\r\\n\\r\\n' % len(body) + body)
p.stdin.flush()
print(p.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, str(SERVICE_DIR), str(FIXTURES / "messi5.jpg")], stdout=subprocess.PIPE
    )
    try:
        worker_pid = int(parent.stdout.readline())
        time.sleep(0.3)  # the worker is inside its hanging batch
        assert _alive(worker_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 2.0
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(worker_pid), "worker outlived its parent by more than 2 s"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_crash_on_batch_kills_itself_with_sigkill(spawn_worker):
    w = spawn_worker(faults="crash_on_batch=2")
    w.wait_ready()
    w.call("detect", {"requestId": "c1", "frames": [jpeg_frame(0)]})
    w.send({"jsonrpc": "2.0", "id": 99, "method": "detect", "params": {"requestId": "c2", "frames": [jpeg_frame(0)]}})
    assert w.recv() is None
    assert w.wait(5) == -signal.SIGKILL


def test_crash_on_frame_with_once_crashes_the_first_worker_only(spawn_worker, tmp_path):
    faults = f"crash_on_frame=7,once={tmp_path / 'marker'}"
    first = spawn_worker(faults=faults)
    first.wait_ready()
    first.call("detect", {"requestId": "a", "frames": [jpeg_frame(6)]})  # no frame 7: fine
    first.send(
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "detect",
            "params": {"requestId": "b", "frames": [jpeg_frame(6), jpeg_frame(7)]},
        }
    )
    assert first.recv() is None and first.wait(5) == -signal.SIGKILL
    second = spawn_worker(faults=faults)  # the pool's retry on a fresh worker
    second.wait_ready()
    result = second.call("detect", {"requestId": "b", "frames": [jpeg_frame(6), jpeg_frame(7)]})
    assert all(len(f["persons"]) == 1 for f in result["frames"])


def test_startup_delay_and_exit_after_ready(spawn_worker):
    w = spawn_worker(faults="startup_delay_ms=400,exit_after_ready")
    ready = w.wait_ready()
    assert ready["loadMs"] >= 400
    assert w.wait(5) == 3


def test_startup_crash_is_a_structured_failure_with_exit_3(spawn_worker):
    w = spawn_worker(faults="startup_crash")
    msg = w.recv()
    assert msg["method"] == "worker/startupFailed"
    p = msg["params"]
    assert p["type"] == "RuntimeError" and p["message"] == "synthetic startup_crash fault"
    assert p["missingModule"] is None and p["hint"] and p["python"] == sys.executable
    assert "Traceback" in p["traceback"]
    assert w.wait(5) == 3
    assert w.recv() is None


@pytest.mark.parametrize(
    "kwargs, env, type_, fragment",
    [
        ({"model": "movenet-thunderr"}, {}, "UnknownModel", "movenet-thunder"),
        ({"device": "tpu"}, {}, "DeviceUnavailable", "auto, cpu, cuda"),
        ({"args": ["--threads", "-2"]}, {}, "BadArguments", "usage"),
        ({}, {"POSE_SYNTHETIC_FAULTS": "bogus"}, "InvalidFaults", "crash_on_batch"),
    ],
)
def test_startup_failures(spawn_worker, kwargs, env, type_, fragment):
    w = spawn_worker(env=env, **kwargs)
    msg = w.recv()
    assert msg["method"] == "worker/startupFailed", msg
    assert msg["params"]["type"] == type_ and fragment in msg["params"]["hint"]
    assert w.wait(5) == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="platform: this machine has CUDA")
def test_cuda_without_cuda_is_device_unavailable(spawn_worker):
    w = spawn_worker(device="cuda")
    msg = w.recv()
    p = msg["params"]
    assert msg["method"] == "worker/startupFailed" and p["type"] == "DeviceUnavailable"
    assert "POSE_DEVICE=cuda" in p["message"] and "POSE_DEVICE=cpu" in p["hint"]
    assert w.wait(5) == 3
