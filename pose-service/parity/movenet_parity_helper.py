"""Python side of the MoveNet parity test (pose-service/parity/movenet-parity.test.ts).

Loads each model exactly as the worker does (MoveNetBackend.load, CPU, optimized graph), runs the committed
fixture inputs (tests/fixtures/movenet/inputs-MODEL.u8.gz) as one batch, and prints JSON on stdout:
{"python", "torch", "models": {MODEL: {"outputs": [[[y, x, score] * 17] * N]}}}.
Usage: python parity/movenet_parity_helper.py [MODEL...]   (cwd anywhere; default both models)
"""

from __future__ import annotations

import gzip
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "movenet"
MODELS = ("movenet-thunder", "movenet-lightning")


def fixture_inputs(model: str):
    import numpy as np

    index = json.loads((FIXTURES / f"index-{model}.json").read_text())
    size = index["inputSize"]
    raw = gzip.decompress((FIXTURES / f"inputs-{model}.u8.gz").read_bytes())
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3).astype(np.int32), index["entries"]


def main(models: list[str]) -> None:
    sys.path.insert(0, str(HERE.parent))
    import torch

    from posepool_worker.backends.base import LoadContext
    from posepool_worker.backends.movenet import MoveNetBackend

    torch.set_num_threads(1)  # parity, not speed; leave the other core to the TF.js side
    result = {"python": platform.python_version(), "torch": torch.__version__, "models": {}}
    for model in models:
        backend = MoveNetBackend.load(LoadContext(model, torch.device("cpu"), 1, HERE.parent / ".models", REPO))
        inputs, _ = fixture_inputs(model)
        result["models"][model] = {"outputs": backend.infer(inputs).tolist()}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
