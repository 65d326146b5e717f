"""Test-only settings of the top-down backends. Never set them in production.

``POSE_TEST_TINY_MODELS=1``: ViTPose and HMR2 build tiny architectures (same module and key names, small
widths and depths: see ``vitpose.config.TINY`` and ``hmr2.config.TINY``) so a checkpoint written by a test
with random values can be posed end to end through a real worker in seconds. The worker logs a warning on
stderr while it is set. The real architectures are checked against the committed manifests separately.
"""

from __future__ import annotations

import os
import sys

TINY_MODELS_ENV = "POSE_TEST_TINY_MODELS"


def tiny_models_requested() -> bool:
    on = os.environ.get(TINY_MODELS_ENV, "").strip().lower() in ("1", "true", "yes")
    if on:
        print(
            f"posepool: WARNING {TINY_MODELS_ENV} is set: using tiny test architectures, not the real models",
            file=sys.stderr,
        )
    return on
