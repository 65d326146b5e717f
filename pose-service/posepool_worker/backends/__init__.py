"""Backend registry: protocol.json ``models[name].backend`` -> a lazily imported PoseBackend class.

Each backend lives in its own module and exports the class named here. Nothing heavy is imported until
``backend_class`` picks one, so a broken backend cannot stop the others from starting.
"""

from __future__ import annotations

import importlib

from .. import protocol
from ..errors import StartupError

# backend name -> (module, class name)
BACKENDS: dict[str, tuple[str, str]] = {
    "movenet": ("posepool_worker.backends.movenet", "MoveNetBackend"),
    "vitpose": ("posepool_worker.backends.vitpose", "ViTPoseBackend"),
    "hmr2": ("posepool_worker.backends.hmr2", "HMR2Backend"),
    "blazepose": ("posepool_worker.backends.blazepose", "BlazePoseBackend"),
    "synthetic": ("posepool_worker.backends.synthetic", "SyntheticBackend"),
}


def check_model(model: str) -> str:
    """The backend name serving ``model``; StartupError(UnknownModel) when none does. Imports nothing."""
    spec = protocol.MODELS.get(model)
    if spec is None or spec.get("backend") not in BACKENDS:
        valid = ", ".join(protocol.model_names(include_test_doubles=False))
        raise StartupError(
            "UnknownModel",
            f"unknown model {model!r}",
            f"set POSE_MODEL to one of: {valid}",
        )
    return spec["backend"]


def backend_class(model: str):
    """The PoseBackend subclass serving ``model``; StartupError(UnknownModel) when no backend serves it.

    Import errors of the backend's module (a missing package) propagate as they are, for the bootstrap's guard.
    """
    module_name, class_name = BACKENDS[check_model(model)]
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
