"""Loading the official checkpoint files without trusting them, and putting their tensors into our modules.

Pickle risk: a ``.pth`` / ``.ckpt`` file is a pickle, and unpickling can run code. posepool never unpickles
a checkpoint with the plain unpickler:

1. ``torch.load(weights_only=True)`` (torch >= 1.13): torch's own allow-list (tensors, containers,
   primitive types).
2. If that refuses the file (the HMR2 Lightning checkpoint pickles a yacs ``CfgNode`` in its
   ``hyper_parameters``; torch 1.13's weights_only unpickler even rejects plain floats, e.g. the optimizer's
   ``lr`` in an mmpose checkpoint), ``RestrictedUnpickler``: tensors and storages, builtin containers and scalars,
   ``collections.OrderedDict`` and numpy arrays are rebuilt; every other class named in the file becomes an
   inert ``Opaque`` placeholder (a dict holding its state). Nothing outside the allow-list is imported or
   called.

Files are only read from ``POSE_MODELS_DIR`` (the user's own download); the remaining risk is a bug in the
allow-listed rebuild functions themselves, the same risk ``weights_only`` carries.

The modules are built on the ``meta`` device (no memory, no init), materialised on the target device with
``to_empty`` and filled by a strict ``load_state_dict``: a missing key, an unexpected key or a wrong shape
is a StartupError naming them, and CUDA running out of memory while doing so is a StartupError that says
to lower POSE_WORKERS / POSE_BATCH_SIZE.
"""

from __future__ import annotations

import collections
import importlib
import pickle
import types
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
import torch._utils

from ...errors import StartupError


class Opaque(dict):
    """Stands in for any class the allow-list does not know (e.g. yacs CfgNode): holds items and state."""

    qualname = "?"

    def __init__(self, *args, **kwargs):  # accepts whatever the pickle passes; runs nothing
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"Opaque({self.qualname}, {dict.__repr__(self)})"


def _opaque_class(module: str, name: str) -> type:
    return type(f"Opaque[{module}.{name}]", (Opaque,), {"qualname": f"{module}.{name}", "__module__": __name__})


def _safe_reconstructor(cls, base, state):
    """copyreg._reconstructor without calling arbitrary ``base.__init__``: only for classes we created."""
    if isinstance(cls, type) and issubclass(cls, Opaque):
        obj = cls()
        obj.args = (state,)
        return obj
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import numpy as np

    # by name, as pickles name it (numpy 2 keeps numpy.core importable for old pickles; numpy's type stubs
    # describe neither numpy 1's nor numpy 2's)
    np_multiarray = importlib.import_module("numpy.core.multiarray")
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch", "Size"): torch.Size,
        ("torch", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
        ("torch", "device"): torch.device,
        ("numpy.core.multiarray", "_reconstruct"): np_multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): np_multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("copyreg", "_reconstructor"): _safe_reconstructor,
        ("copy_reg", "_reconstructor"): _safe_reconstructor,
    }
    for name in ("_rebuild_parameter_with_state", "_rebuild_qtensor"):
        if hasattr(torch._utils, name):
            allowed[("torch._utils", name)] = getattr(torch._utils, name)
    for mod in ("builtins", "__builtin__"):
        for name, obj in (
            ("set", set),
            ("frozenset", frozenset),
            ("list", list),
            ("dict", dict),
            ("tuple", tuple),
            ("int", int),
            ("float", float),
            ("complex", complex),
            ("str", str),
            ("bytes", bytes),
            ("bool", bool),
            ("bytearray", bytearray),
            ("slice", slice),
            ("object", object),
        ):
            allowed[(mod, name)] = obj
    for name in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"):
        allowed[("torch", name)] = getattr(torch, name)
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only allow-listed globals; anything else becomes an inert ``Opaque`` subclass."""

    _allowed: dict | None = None

    def find_class(self, module: str, name: str):
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        obj = RestrictedUnpickler._allowed.get((module, name))
        if obj is not None:
            return obj
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return _rebuild_from_type_v2
        return _opaque_class(module, name)


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch's tensor-subclass rebuild, but only for plain tensors/parameters (``func`` is allow-listed)."""
    tensor = func(*args)
    if new_type not in (torch.Tensor, torch.nn.Parameter) and not (
        isinstance(new_type, type) and issubclass(new_type, Opaque)
    ):
        raise pickle.UnpicklingError(f"refusing tensor subclass {new_type!r}")
    return tensor


restricted_pickle = types.ModuleType("posepool_restricted_pickle")
vars(restricted_pickle).update(
    Unpickler=RestrictedUnpickler,
    load=lambda f, **kw: RestrictedUnpickler(f, **kw).load(),
    UnpicklingError=pickle.UnpicklingError,
)


def load_restricted(path: Path):
    """torch.load with ``RestrictedUnpickler``. torch 1.13's ``torch.load`` ignores ``pickle_module`` unless
    ``weights_only`` is set (it resets it to ``pickle``), so the zip container is opened with the same
    (private, present in 1.13 and 2.x) functions torch.load itself uses; torch.load is the fallback."""
    zip_reader = getattr(torch.serialization, "_open_zipfile_reader", None)
    load = getattr(torch.serialization, "_load", None)
    if zip_reader is None or load is None:
        return torch.load(str(path), map_location="cpu", pickle_module=restricted_pickle, weights_only=False)
    with open(path, "rb") as f:
        if not torch.serialization._is_zipfile(f):
            raise pickle.UnpicklingError("not a zip-format torch checkpoint (pre-1.6 torch.save format)")
        with zip_reader(f) as zf:
            return load(zf, "cpu", restricted_pickle, encoding="utf-8")


def read_checkpoint(path: Path, model: str, hint: str, weights_only_first: bool = True) -> dict:
    """The checkpoint's top-level object, read on CPU with ``weights_only`` or, failing that, the restricted
    unpickler. ``weights_only_first=False`` goes straight to the restricted unpickler, for containers known to
    hold other objects after their tensors (a Lightning checkpoint: weights_only would read gigabytes of tensors
    before refusing its config). Unreadable files are StartupError(ModelFilesMissing) with ``hint``."""
    try:
        if not weights_only_first:
            return load_restricted(path)
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            return load_restricted(path)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError) as exc:
        raise StartupError(
            "ModelFilesMissing",
            f"{model}: cannot read checkpoint {path}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint,
        ) from exc


def state_dict_of(obj: Any, path: Path, model: str, hint: str) -> dict[str, torch.Tensor]:
    """``obj['state_dict']`` (mmpose and Lightning containers) or ``obj`` itself when it maps names to tensors."""
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise StartupError("ModelFilesMissing", f"{model}: {path} holds no state_dict of tensors", hint)
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}


def is_cuda_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom_type is not None and isinstance(exc, oom_type)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def out_of_memory_at_load(model: str, device: torch.device, exc: BaseException) -> StartupError:
    return StartupError(
        "OutOfMemory",
        f"{model}: {device} ran out of memory while loading the model: {str(exc).splitlines()[0]}",
        "lower POSE_WORKERS (each worker holds its own copy of the model) or POSE_BATCH_SIZE, or pick a smaller "
        "model (POSE_MODEL), or free the GPU; `nvidia-smi` shows what holds its memory",
    )


def shape_mismatch(
    expected: dict[str, tuple], got: dict[str, tuple], shape_text: Callable[[tuple], str] = str
) -> dict | None:
    """How ``got`` (name -> shape) differs from ``expected``: None when they match, else a one-line summary
    (keys missing, unexpected, of the wrong shape; the first few of each) and the counts."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(
        f"{k} {shape_text(got[k])} != {shape_text(expected[k])}"
        for k in set(got) & set(expected)
        if got[k] != expected[k]
    )
    if not (missing or unexpected or wrong):
        return None

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing: {few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {few(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} wrong shapes: {few(wrong)}")
    return {
        "summary": "; ".join(parts),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "wrongShapes": len(wrong),
    }


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def materialize(
    build: Callable[[torch.device], ModuleT],
    state: dict[str, torch.Tensor],
    device: torch.device,
    model: str,
    path: Path,
    hint: str,
) -> ModuleT:
    """Build on ``meta``, allocate on ``device``, load ``state`` strictly; eval mode, no grads."""
    net = build(torch.device("meta"))
    expected = net.state_dict()
    mismatch = shape_mismatch(
        {k: tuple(v.shape) for k, v in expected.items()}, {k: tuple(v.shape) for k, v in state.items()}
    )
    if mismatch:
        raise StartupError(
            "ModelFilesMissing",
            f"{model}: {path} does not match the {model} architecture ({mismatch['summary']})",
            hint,
        )
    try:
        net = net.to_empty(device=device)
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # CUDA OOM is a RuntimeError subclass
        if is_cuda_oom(exc):
            raise out_of_memory_at_load(model, device, exc) from exc
        raise
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
