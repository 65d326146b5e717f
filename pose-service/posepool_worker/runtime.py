"""Thread counts and the torch device: the process-wide runtime settings a worker applies once.

``set_thread_env`` runs before torch/cv2 are imported (OpenMP/MKL read their env at load);
``apply_threads`` and ``resolve_device`` run after, with the modules passed in.
"""

from __future__ import annotations

import importlib
import os
import re

from .errors import StartupError

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_thread_env(threads: int | None) -> None:
    if threads:
        for name in THREAD_ENV_VARS:
            os.environ[name] = str(threads)


def apply_threads(threads: int | None, torch, cv2) -> int:
    """Apply ``threads`` (None: keep the libraries' defaults); returns torch's intra-op thread count."""
    disable_unusable_nnpack()
    if threads:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable before any inter-op work has started
            pass
        cv2.setNumThreads(threads)
    return torch.get_num_threads()


def disable_unusable_nnpack() -> None:
    """torch 2.x tries NNPACK for some eager CPU convolutions and, where the CPU cannot run it, logs "Could not
    initialize NNPACK" on every such call; turning it off there changes nothing but the log."""
    try:  # torch 1.x has no torch.backends.nnpack
        nnpack = importlib.import_module("torch.backends.nnpack")
    except ImportError:
        return
    if hasattr(nnpack, "set_flags") and not nnpack.is_available():
        nnpack.set_flags(False)


_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_spec(spec: str) -> str:
    """The normalized device spec; DeviceUnavailable for anything but auto, cpu, cuda, cuda:N. No imports."""
    spec = (spec or "auto").strip().lower()
    if not _DEVICE_RE.match(spec):
        raise StartupError(
            "DeviceUnavailable",
            f"unknown device {spec!r}",
            "set POSE_DEVICE to auto, cpu, cuda or cuda:N",
        )
    return spec


def resolve_device(spec: str, torch):
    """``auto`` -> cuda if available else cpu; ``cpu``; ``cuda``/``cuda:N`` (DeviceUnavailable if absent)."""
    spec = check_device_spec(spec)
    if spec == "cpu":
        return torch.device("cpu")
    cuda = torch.cuda.is_available()
    if spec == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    if not cuda:
        built = getattr(torch.version, "cuda", None)
        why = (
            f"torch {torch.__version__} has CUDA {built} but sees no GPU"
            if built
            else f"torch {torch.__version__} was built without CUDA"
        )
        raise StartupError(
            "DeviceUnavailable",
            f"POSE_DEVICE={spec} but CUDA is not available ({why})",
            "set POSE_DEVICE=cpu (or auto), or install a CUDA build of torch and the NVIDIA driver",
        )
    index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise StartupError(
            "DeviceUnavailable",
            f"POSE_DEVICE={spec} but only {count} CUDA device(s) are visible",
            f"set POSE_DEVICE to cuda:0..cuda:{count - 1}, or auto",
        )
    return torch.device("cuda", index)
