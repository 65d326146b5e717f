"""Checks downloaded model files the way the workers will read them (used by `npm run models:download`).

    python scripts/verify-model-files.py --imports
    python scripts/verify-model-files.py --checkpoint vitpose pose-service/manifests/vitpose-b.json FILE
    python scripts/verify-model-files.py --checkpoint hmr2 pose-service/manifests/hmr2.json CKPT --regressor J19_PKL

Run it with the workers' interpreter (POSE_PYTHON, else the set-up's record): it imports the backends' own
code from pose-service/posepool_worker.

- ``--checkpoint FORMAT MANIFEST FILE``: reads FILE with the backend's safe loader on the CPU
  (``topdown.checkpoints.read_checkpoint``: torch's weights_only, else the restricted unpickler; never the
  plain unpickler), takes its ``state_dict`` as the backend does (ViTPose: ViTPose++ experts merged for COCO,
  unused heads dropped; HMR2: the Lightning module's discriminator/SMPL buffers dropped) and compares every
  tensor name and shape with the key manifest (pose-service/manifests/*.json: ``{"tensors": {name: shape}}``).
- ``--regressor FILE``: reads SMPL_to_J19.pkl with the backend's reader; it must be a 19 x N matrix.
- ``--imports``: only imports what the checks need (a quick "can this interpreter check files?").

Prints one JSON object per check on stdout ({"file", "ok", ...; on failure "problem"}). Exit status: 0 every
check passed, 1 a file failed its check, 2 bad usage or the interpreter cannot import the backend code.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parent.parent / "pose-service"
FORMATS = ("vitpose", "hmr2")


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def import_backend_code():
    """The loader and error types (the HMR2 backend, which pulls in more, is imported when an HMR2 file is checked)."""
    sys.path.insert(0, str(SERVICE_DIR))
    import torch  # the reason this needs the workers' interpreter

    from posepool_worker.backends.topdown.checkpoints import read_checkpoint, shape_mismatch, state_dict_of
    from posepool_worker.backends.vitpose.weights import to_model_state
    from posepool_worker.errors import StartupError

    return {
        "read_checkpoint": read_checkpoint,
        "shape_mismatch": shape_mismatch,
        "state_dict_of": state_dict_of,
        "to_model_state": to_model_state,
        "StartupError": StartupError,
        "torch": torch,
    }


def hmr2_ignored():
    from posepool_worker.backends.hmr2.backend import IGNORED

    return IGNORED


def check_checkpoint(code: dict, fmt: str, manifest_path: Path, path: Path) -> dict:
    out = {"file": str(path), "check": f"{fmt} checkpoint vs {manifest_path.name}"}
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = {k: tuple(v) for k, v in manifest["tensors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {**out, "ok": False, "problem": f"unusable manifest {manifest_path}: {type(exc).__name__}: {exc}"}
    hint = "delete it and download again"
    try:
        # the HMR2 Lightning container pickles a yacs CfgNode: straight to the restricted unpickler, as the backend
        raw = code["read_checkpoint"](path, fmt, hint, weights_only_first=(fmt != "hmr2"))
        state = code["state_dict_of"](raw, path, fmt, hint)
    except code["StartupError"] as exc:
        return {**out, "ok": False, "problem": str(exc.args[0]) if exc.args else repr(exc)}
    del raw
    if fmt == "vitpose":
        state = code["to_model_state"](state)
    else:
        ignored = hmr2_ignored()
        state = {k: v for k, v in state.items() if not ignored.match(k)}
    got = {k: tuple(v.shape) for k, v in state.items()}
    mismatch = code["shape_mismatch"](expected, got, shape_text=lambda shape: str(list(shape)))
    if mismatch:
        return {
            **out,
            "ok": False,
            "problem": f"does not match the key manifest ({mismatch['summary']})",
            "missing": mismatch["missing"],
            "unexpected": mismatch["unexpected"],
            "wrongShapes": mismatch["wrongShapes"],
        }
    return {**out, "ok": True, "tensors": len(got), "parameters": sum(math.prod(s) for s in got.values())}


def check_regressor(path: Path) -> dict:
    out = {"file": str(path), "check": "SMPL_to_J19 regressor"}
    try:
        from posepool_worker.backends.hmr2.smpl_file import read_regressor

        reg = read_regressor(path)
    except Exception as exc:  # any parse failure is an unusable file
        return {**out, "ok": False, "problem": f"unreadable: {type(exc).__name__}: {exc}"}
    if reg.ndim != 2 or reg.shape[0] != 19:
        return {**out, "ok": False, "problem": f"expected a 19 x N matrix, found shape {list(reg.shape)}"}
    return {**out, "ok": True, "shape": list(reg.shape)}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--imports", action="store_true", help="only check that the backend code imports")
    p.add_argument("--checkpoint", nargs=3, action="append", default=[], metavar=("FORMAT", "MANIFEST", "FILE"))
    p.add_argument("--regressor", action="append", default=[], metavar="FILE")
    args = p.parse_args(argv)
    if not (args.imports or args.checkpoint or args.regressor):
        p.error("nothing to check")
    for fmt, _, _ in args.checkpoint:
        if fmt not in FORMATS:
            p.error(f"unknown checkpoint format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        code = import_backend_code()
    except Exception as exc:  # ImportError, or a broken torch install
        emit({"ok": False, "problem": f"{sys.executable} cannot import the backend code: {type(exc).__name__}: {exc}"})
        return 2
    if args.imports:
        emit({"ok": True, "python": sys.executable, "torch": code["torch"].__version__})
    results = [check_checkpoint(code, fmt, Path(m), Path(f)) for fmt, m, f in args.checkpoint]
    results += [check_regressor(Path(f)) for f in args.regressor]
    for r in results:
        emit(r)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
