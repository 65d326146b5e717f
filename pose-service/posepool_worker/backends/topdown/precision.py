"""Which floating-point precision a top-down model runs in, and the autocast context for it.

``POSE_PRECISION`` = ``auto`` (default) | ``fp32`` | ``fp16`` | ``bf16``:

- ``auto``: CUDA -> fp16 autocast (weights stay fp32; matmuls/convs in fp16, LayerNorm/softmax in fp32 as
  autocast keeps them); CPU -> fp32 (CPU bf16 is only faster on CPUs with AMX/AVX512-BF16, and costs accuracy).
- ``fp16`` needs CUDA; ``bf16`` works on CUDA (Ampere or newer) and on CPU.

Accuracy: heatmap decoding, SMPL skinning and the camera maths always run in fp32 after the network;
``tests/test_topdown_precision.py`` compares bf16 autocast with fp32 on CPU (keypoints within a fraction of a
heatmap cell on a small ViTPose). fp16 on CUDA has more mantissa than bf16 (10 vs 7 bits), so it is the
CUDA default; a GPU session should confirm it on the real checkpoints (bench/gpu_speed.py reports the drift).
"""

from __future__ import annotations

import contextlib
import os

import torch

from ...errors import StartupError

PRECISION_ENV = "POSE_PRECISION"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(device: torch.device, requested: str | None = None) -> str:
    """The concrete precision (fp32 / fp16 / bf16) for ``device``; StartupError for impossible requests."""
    name = (requested if requested is not None else os.environ.get(PRECISION_ENV, "auto")).strip().lower() or "auto"
    if name not in PRECISIONS:
        raise StartupError(
            "BadConfiguration",
            f"{PRECISION_ENV}={name!r} is not a precision",
            f"set {PRECISION_ENV} to one of: {', '.join(PRECISIONS)}",
        )
    if name == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if name == "fp16" and device.type != "cuda":
        raise StartupError(
            "BadConfiguration",
            f"{PRECISION_ENV}=fp16 needs a CUDA device (device is {device})",
            f"set {PRECISION_ENV}=bf16 or fp32 (or auto) on CPU",
        )
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise StartupError(
            "BadConfiguration",
            f"{PRECISION_ENV}=bf16 but this GPU has no bf16 support",
            f"set {PRECISION_ENV}=fp16 (or auto)",
        )
    return name


def autocast(device: torch.device, precision: str):
    """Autocast context for running the network in ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
