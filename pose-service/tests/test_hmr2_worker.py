"""End to end through a real worker process: `python -m posepool_worker --model hmr2` with POSE_MODELS_DIR
holding the hmr2_data.tar.gz layout (a Lightning .ckpt with the official key names and random values, tiny
architecture via the POSE_TEST_TINY_MODELS test setting, SMPL_to_J19.pkl) and a fake SMPL_NEUTRAL.pkl with
the official keys/shapes (chumpy/scipy objects), real JPEG frames, the real MoveNet box source."""

import numpy as np
import torch

from conftest import FIXTURES, jpeg_frame
from posepool_worker.backends.hmr2.config import TINY
from posepool_worker.backends.hmr2.network import HMR2Net
from posepool_worker.backends.topdown.test_settings import TINY_MODELS_ENV
from test_topdown_fakes import hmr2_models_dir

SHAPES = {k: v.shape for k, v in HMR2Net(TINY, device=torch.device("meta")).state_dict().items()}


def test_hmr2_worker_poses_real_frames(spawn_worker, tmp_path):
    hmr2_models_dir(tmp_path, SHAPES)
    w = spawn_worker(
        model="hmr2",
        threads=2,
        env={"POSE_MODELS_DIR": str(tmp_path), TINY_MODELS_ENV: "1", "POSE_TOPDOWN_BOXES": "movenet-lightning"},
    )
    ready = w.wait_ready(timeout=120)
    assert ready["model"]["extras"] == ["boxSource", "smpl", "camera", "joints3d", "vertices"]
    frames = [jpeg_frame(0), jpeg_frame(1, FIXTURES / "basketball1.jpg")]
    plain = w.call("detect", {"requestId": "h1", "frames": frames}, timeout=120)
    with_v = w.call("detect", {"requestId": "h2", "frames": frames, "options": {"vertices": True}}, timeout=120)
    for a, b in zip(plain["frames"], with_v["frames"]):
        (p,) = a["persons"]
        (q,) = b["persons"]
        assert p["boxSource"] == "movenet" and 0.25 <= p["score"] <= 1
        assert len(p["keypoints"]) == 17 and np.array(p["joints3d"]).shape == (44, 3)
        assert p["smpl"]["rotation"] == "matrix" and np.array(p["smpl"]["bodyPose"]).shape == (23, 3, 3)
        assert len(p["camera"]["translation"]) == 3 and "vertices" not in p
        assert np.array(q["vertices"]).shape == (6890, 3)
        assert q["joints3d"] == p["joints3d"]  # same frame, same answer


def test_hmr2_worker_without_smpl_fails_with_the_registration_hint(spawn_worker, tmp_path):
    hmr2_models_dir(tmp_path, SHAPES, smpl=False)
    w = spawn_worker(
        model="hmr2", env={"POSE_MODELS_DIR": str(tmp_path), TINY_MODELS_ENV: "1", "POSE_TOPDOWN_BOXES": "full-frame"}
    )
    msg = w.recv(timeout=60)
    assert msg["method"] == "worker/startupFailed", msg
    p = msg["params"]
    assert p["type"] == "ModelFilesMissing" and "SMPL" in p["message"]
    assert "https://smpl.is.tue.mpg.de" in p["hint"]
    assert w.wait(30) == 3
