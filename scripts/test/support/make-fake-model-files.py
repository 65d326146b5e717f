"""Test helper (no tests here): small fake model files for scripts/test/e2e/models-download-verified.test.ts.

    python make-fake-model-files.py OUT_DIR

Writes, with the official containers and key names but the tiny test architectures' shapes
(POSE_TEST_TINY_MODELS: vitpose.config.TINY, hmr2.config.TINY), and test key manifests for those shapes:
  vitpose.pth            mmpose container, classic layout (plus the cls_token the loader drops)
  vitpose-wrong.pth      the same with one tensor of another shape
  vitpose-manifest.json  {"tensors": {name: shape}} of the tiny ViTPose network
  hmr2.ckpt              Lightning container (yacs CfgNode stand-in, discriminator/SMPL buffers)
  hmr2-manifest.json     the tiny HMR2 network's manifest
  j19.pkl                a 19 x 6890 regressor
Uses pose-service/tests/test_topdown_fakes.py, the writers the Python tests use.
"""

import json
import sys
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[3] / "pose-service"
sys.path[:0] = [str(SERVICE), str(SERVICE / "tests")]

import torch  # noqa: E402

from posepool_worker.backends.hmr2.config import TINY as HMR2_TINY  # noqa: E402
from posepool_worker.backends.hmr2.network import HMR2Net  # noqa: E402
from posepool_worker.backends.vitpose.config import TINY as VITPOSE_TINY  # noqa: E402
from posepool_worker.backends.vitpose.network import ViTPoseNet  # noqa: E402
from test_topdown_fakes import write_hmr2_checkpoint, write_j19, write_vitpose_checkpoint  # noqa: E402


def shapes(net) -> dict:
    return {k: v.shape for k, v in net.state_dict().items()}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = torch.device("meta")
    vit = shapes(ViTPoseNet(VITPOSE_TINY, device=meta))
    write_vitpose_checkpoint(out / "vitpose.pth", vit)
    wrong = dict(vit)
    wrong["keypoint_head.final_layer.weight"] = torch.Size([17, 8, 1, 1])
    write_vitpose_checkpoint(out / "vitpose-wrong.pth", wrong)
    (out / "vitpose-manifest.json").write_text(
        json.dumps({"model": "vitpose tiny (test)", "tensors": {k: list(v) for k, v in vit.items()}})
    )
    hmr = shapes(HMR2Net(HMR2_TINY, device=meta))
    write_hmr2_checkpoint(out / "hmr2.ckpt", hmr)
    (out / "hmr2-manifest.json").write_text(
        json.dumps({"model": "hmr2 tiny (test)", "tensors": {k: list(v) for k, v in hmr.items()}})
    )
    write_j19(out / "j19.pkl")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
