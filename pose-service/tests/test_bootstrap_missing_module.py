"""A worker started by an interpreter that lacks cv2 (or torch) must say so in a structured
worker/startupFailed message and exit non-zero, never die with a bare traceback or EPIPE.

The interpreter is a venv of the one running pytest (the set-up's record: a pip venv or Debian's packages)
that sees every package it sees except the one module taken away (scripts/make-venv-without.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SERVICE_DIR, WorkerClient

MAKE_VENV = SERVICE_DIR.parent / "scripts" / "make-venv-without.py"


def venv_without(tmp_path: Path, module: str) -> Path:
    out = subprocess.run(
        [sys.executable, str(MAKE_VENV), str(tmp_path / f"venv-no-{module}"), module],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(json.loads(out.stdout)["python"])


@pytest.mark.parametrize(
    "module, pip_name, apt_name",
    [
        ("cv2", "opencv-python-headless", "python3-opencv"),
        ("torch", "torch", "python3-torch"),
    ],
)
def test_missing_module_is_a_structured_startup_failure(tmp_path, module, pip_name, apt_name):
    python = venv_without(tmp_path, module)
    probe = subprocess.run(
        [str(python), "-c", f"import numpy\ntry:\n import {module}\nexcept ImportError: print('absent')"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "absent", probe.stderr  # the venv really lacks it (and still has numpy)

    worker = WorkerClient(python=str(python))
    try:
        msg = worker.recv(timeout=60)
        assert msg is not None, worker.stderr_text()
        assert msg["method"] == "worker/startupFailed", msg
        p = msg["params"]
        assert p["type"] == "ModuleNotFoundError"
        assert p["message"] == f"No module named '{module}'"
        assert p["missingModule"] == module
        assert p["python"] == str(python)
        assert "npm run setup" in p["hint"]
        assert f"pip install {pip_name}" in p["hint"] and f"apt-get install {apt_name}" in p["hint"]
        assert "Traceback" in p["traceback"]
        assert worker.wait(10) == 3
        assert worker.recv() is None  # exactly one message, then EOF
        assert f"No module named '{module}'" in worker.stderr_text()  # and the operator's log says it too
    finally:
        worker.close()
