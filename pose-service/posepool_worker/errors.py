"""The worker's error types, and the install hint for a missing Python module (from python-modules.txt).

Stdlib only (the bootstrap uses it before numpy/cv2/torch are importable).

- ``StartupError``: raised while starting (by the core or by a backend's ``load``) for a cause the user
  can fix: missing or corrupt weight files, an unknown model, an unavailable device. The bootstrap turns it
  into a ``worker/startupFailed`` notification with its own ``type`` and ``hint``.
- ``FrameError``: one frame could not be posed. A backend returns it (or raises it) in place of that
  frame's person list; the code is one of protocol.json's ``frameErrorCodes``.
"""

from __future__ import annotations

from pathlib import Path


class StartupError(Exception):
    """A startup failure with a stable type (see protocol.json startupFailureTypes) and a one-line fix."""

    def __init__(self, type: str, message: str, hint: str, missing_module: str | None = None):
        super().__init__(message)
        self.type = type
        self.message = message
        self.hint = hint
        self.missing_module = missing_module


class FrameError(Exception):
    """A per-frame failure: ``code`` from protocol.json frameErrorCodes, ``message`` for humans."""

    def __init__(self, code: str, message: str):
        from . import protocol  # here, not at module level: the bootstrap imports this module before its guard

        if code not in protocol.FRAME_ERROR_CODES:
            raise ValueError(f"unknown frame error code {code!r}; known: {sorted(protocol.FRAME_ERROR_CODES)}")
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"FrameError({self.code!r}, {self.message!r})"


MODULE_TABLE = Path(__file__).with_name("python-modules.txt")


def module_packages(table: Path = MODULE_TABLE) -> dict[str, tuple[str, str]]:
    """Import name -> (pip package, Debian package), from the module table; empty if the table cannot be
    read, so that a hint never hides the failure it describes."""
    try:
        text = table.read_text(encoding="utf-8")
    except OSError:
        return {}
    packages = {}
    for line in text.splitlines():
        cols = line.split("#", 1)[0].split()
        if len(cols) >= 3:
            packages[cols[0]] = (cols[1], cols[2])
    return packages


def hint_for_missing_module(module: str | None) -> str:
    """The one-line fix for a ModuleNotFoundError of ``module`` (a dotted name is reduced to its top level)."""
    top = (module or "").split(".")[0]
    if not top:
        return "run `npm run setup` (it installs the pose-service's Python packages), then `npm run doctor`"
    if top == "posepool_worker":
        return "start the worker with its working directory in pose-service/ (python -m posepool_worker)"
    pip_name, apt_name = module_packages().get(top, (top, None))
    hint = f"run `npm run setup`, or install it: pip install {pip_name}"
    if apt_name:
        hint += f" (Debian: apt-get install {apt_name})"
    return hint
