"""Shared test helpers: a client that runs the real worker process and speaks the wire protocol to it.

Tests run with the interpreter that runs pytest: `npm test` uses the workers' own (the set-up's record).
Under CI=true a skipped test is reported as failed, with its reason, unless the reason starts with
"platform:" (a documented platform or hardware skip): a skip is a test that did not run.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SERVICE_DIR = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(SERVICE_DIR))

from posepool_worker.backends.topdown.test_settings import TINY_MODELS_ENV  # noqa: E402
from posepool_worker.framing import FrameDecoder, encode_message  # noqa: E402

CI = os.environ.get("CI", "").lower() in ("true", "1")
PLATFORM_SKIP = "platform:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(PLATFORM_SKIP):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} did not run under CI=true (a skip is a failure): {reason}"


class WorkerClient:
    """One worker process: ``python -m posepool_worker`` with cwd pose-service/, stdin/stdout as the wire."""

    def __init__(self, model="synthetic", faults="", args=(), env=None, python=sys.executable, device="cpu", threads=1):
        full_env = dict(os.environ)
        full_env.pop("POSE_SYNTHETIC_FAULTS", None)
        if faults:
            full_env["POSE_SYNTHETIC_FAULTS"] = faults
        full_env.update(env or {})
        cmd = [python, "-m", "posepool_worker", "--model", model, "--device", device, "--threads", str(threads), *args]
        # A file, not a pipe: a chatty worker can never block on it. Open for the worker's life; close() closes it.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=SERVICE_DIR, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._decoder = FrameDecoder()
        self._pending: list = []
        self._next_id = 0
        self.stdout_bytes = bytearray()  # everything the worker wrote on stdout, for isolation checks

    # ---- wire ----------------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        self.proc.stdin.write(encode_message(message))
        self.proc.stdin.flush()

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, timeout: float = 30.0) -> dict | None:
        """The next message, or None at EOF. Any bytes that are not a framed JSON message fail the test."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message within {timeout}s; stderr so far:\n{self.stderr_text()}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.stdout_bytes += chunk
            for item in self._decoder.feed(chunk):
                assert isinstance(item, bytes), f"framing broken on the worker's stdout: {item}"
                self._pending.append(json.loads(item.decode("utf-8")))
        return self._pending.pop(0)

    def request(self, method: str, params=None, timeout: float = 30.0) -> dict:
        """Send a request and return its whole response message (result or error)."""
        self._next_id += 1
        msg = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        reply = self.recv(timeout)
        assert reply is not None, f"worker closed stdout; stderr:\n{self.stderr_text()}"
        assert reply.get("id") == self._next_id, reply
        return reply

    def call(self, method: str, params=None, timeout: float = 30.0):
        reply = self.request(method, params, timeout)
        assert "error" not in reply, reply
        return reply["result"]

    def wait_ready(self, timeout: float = 60.0) -> dict:
        msg = self.recv(timeout)
        assert msg is not None and msg.get("method") == "worker/ready", (msg, self.stderr_text())
        return msg["params"]

    # ---- process -------------------------------------------------------------------------------------
    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def spawn_worker():
    """Factory: spawn_worker(model="synthetic", faults="", ...) -> WorkerClient; all killed at teardown."""
    clients: list[WorkerClient] = []

    def spawn(**kwargs) -> WorkerClient:
        client = WorkerClient(**kwargs)
        clients.append(client)
        return client

    yield spawn
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def synthetic_worker():
    """One ready synthetic worker shared by a module's tests (no faults; --device auto --threads 2)."""
    client = WorkerClient(device="auto", threads=2)
    client.ready = client.wait_ready()
    yield client
    client.close()


def rgb(name: str):
    """A fixture image as HxWx3 uint8 RGB, C-contiguous (what a worker's frame decoding gives a backend)."""
    import cv2  # here: conftest itself stays importable without cv2
    import numpy as np

    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(FIXTURES / name)), cv2.COLOR_BGR2RGB))


@pytest.fixture
def tiny_env(monkeypatch):
    """The top-down models with their tiny test architectures and full-frame boxes (no MoveNet pass)."""
    monkeypatch.setenv(TINY_MODELS_ENV, "1")
    monkeypatch.setenv("POSE_TOPDOWN_BOXES", "full-frame")


def jpeg_frame(index: int, path: Path = FIXTURES / "messi5.jpg") -> dict:
    return {
        "index": index,
        "encoding": "jpeg",
        "width": 0,
        "height": 0,
        "data": base64.b64encode(path.read_bytes()).decode("ascii"),
    }


def corrupt_jpeg_frame(index: int) -> dict:
    raw = (FIXTURES / "messi5.jpg").read_bytes()
    garbage = raw[:2] + bytes(range(256)) * 4  # a JPEG start marker, then nothing decodable
    return {
        "index": index,
        "encoding": "jpeg",
        "width": 0,
        "height": 0,
        "data": base64.b64encode(garbage).decode("ascii"),
    }
