"""The founding bug, for real: a worker started by an interpreter that lacks cv2 (or torch) must say so in a
structured worker/startupFailed message and exit non-zero, never die with a bare traceback or EPIPE.

The interpreter is a venv of /usr/bin/python3 that sees every entry of Debian's dist-packages except the one
module taken away (a .pth file pointing at a directory of symlinks).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import WorkerClient

BASE_PYTHON = "/usr/bin/python3"
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")

pytestmark = pytest.mark.skipif(
    not (Path(BASE_PYTHON).exists() and DIST_PACKAGES.is_dir() and any(DIST_PACKAGES.glob("cv2*"))),
    reason="needs Debian's /usr/bin/python3 with python3-opencv in /usr/lib/python3/dist-packages",
)


def venv_without(tmp_path: Path, module: str) -> Path:
    venv = tmp_path / f"venv-no-{module}"
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    links = tmp_path / f"dist-packages-no-{module}"
    links.mkdir()
    for entry in DIST_PACKAGES.iterdir():
        if entry.name == module or entry.name.startswith((f"{module}.", f"{module}-")):
            continue
        (links / entry.name).symlink_to(entry)
    out = subprocess.run([BASE_PYTHON, "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
                         capture_output=True, text=True, check=True)
    version = out.stdout.strip()
    site = venv / "lib" / version / "site-packages"
    (site / "_debian.pth").write_text(f"{links}\n")
    return venv / "bin" / "python"


@pytest.mark.parametrize("module, pip_name, apt_name", [
    ("cv2", "opencv-python-headless", "python3-opencv"),
    ("torch", "torch", "python3-torch"),
])
def test_missing_module_is_a_structured_startup_failure(tmp_path, module, pip_name, apt_name):
    python = venv_without(tmp_path, module)
    probe = subprocess.run([str(python), "-c", f"import numpy\ntry:\n import {module}\nexcept ImportError: print('absent')"],
                           capture_output=True, text=True)
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
