"""bench/gpu_speed.py keeps working (CPU smoke run with the tiny architectures; the real run needs a GPU)."""

import subprocess
import sys

from conftest import SERVICE_DIR


def test_gpu_speed_script_runs_on_cpu_with_tiny_models():
    out = subprocess.run(
        [
            sys.executable,
            "bench/gpu_speed.py",
            "--device",
            "cpu",
            "--tiny",
            "--batch-sizes",
            "2",
            "--precisions",
            "fp32,bf16",
            "--iters",
            "1",
        ],
        cwd=SERVICE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("vitpose-b", "hmr2"))]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("vitpose-b", "fp32", "2"),
        ("vitpose-b", "bf16", "2"),
        ("hmr2", "fp32", "2"),
        ("hmr2", "bf16", "2"),
    ]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)
    assert float(rows[0][6]) == 0.0 and 0 < float(rows[1][6]) < 0.1  # bf16 drift: present and small
