"""End to end through a real worker process: `python -m posepool_worker --model vitpose-s` with POSE_MODELS_DIR
holding a checkpoint in the official mmpose container (official key names, random values, tiny architecture
via the POSE_TEST_TINY_MODELS test setting), real JPEG frames, the real MoveNet box source."""

import cv2
import numpy as np
import torch

from conftest import FIXTURES, SERVICE_DIR, corrupt_jpeg_frame, jpeg_frame
from posepool_worker import protocol
from posepool_worker.backends.base import LoadContext
from posepool_worker.backends.topdown.test_settings import TINY_MODELS_ENV
from posepool_worker.backends.vitpose import ViTPoseBackend
from posepool_worker.backends.vitpose.config import TINY
from posepool_worker.backends.vitpose.network import ViTPoseNet
from test_topdown_fakes import write_vitpose_checkpoint

COCO = protocol.KEYPOINT_SETS["coco17"]["names"]


def test_vitpose_worker_poses_real_frames(spawn_worker, tmp_path, monkeypatch):
    shapes = {k: v.shape for k, v in ViTPoseNet(TINY, device=torch.device("meta")).state_dict().items()}
    write_vitpose_checkpoint(tmp_path / "vitpose-s.pth", shapes)
    w = spawn_worker(
        model="vitpose-s",
        threads=2,
        env={"POSE_MODELS_DIR": str(tmp_path), TINY_MODELS_ENV: "1", "POSE_TOPDOWN_BOXES": "movenet-lightning"},
    )
    ready = w.wait_ready(timeout=120)
    assert ready["model"]["name"] == "vitpose-s" and ready["model"]["keypoints"] == COCO
    assert ready["model"]["extras"] == ["boxSource"] and ready["device"] == "cpu"
    frames = [jpeg_frame(0), jpeg_frame(1, FIXTURES / "basketball1.jpg"), corrupt_jpeg_frame(2)]
    for options in ({}, {"flipTest": True}):
        result = w.call("detect", {"requestId": "vp", "frames": frames, "options": options}, timeout=120)
        good, bad = result["frames"][:2], result["frames"][2]
        assert bad["persons"] == [] and bad["error"]["code"] == "FRAME_DECODE_FAILED"
        for f, (width, height) in zip(good, ((548, 342), (640, 480))):
            assert "error" not in f
            (p,) = f["persons"]
            assert p["boxSource"] == "movenet"  # MoveNet found the player: his box, not the frame
            x, y, bw, bh = p["bbox"]
            assert x >= 0 and y >= 0 and x + bw <= width and y + bh <= height and bw * bh < 0.9 * width * height
            assert len(p["keypoints"]) == 17 and all(len(k) == 3 for k in p["keypoints"])
        # the same answer as the backend in this process (same file, same box source): nothing lost on the wire
        images = [
            cv2.cvtColor(cv2.imread(str(FIXTURES / n)), cv2.COLOR_BGR2RGB) for n in ("messi5.jpg", "basketball1.jpg")
        ]
        # with the worker's thread count: a BLAS sums in an order that depends on it (OpenBLAS: this tiny random
        # model's keypoints 0.16-0.95 px apart between 1 and 2 threads, identical at 2)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            local = backend(tmp_path, monkeypatch).detect(images, options)
        finally:
            torch.set_num_threads(threads)
        for f, mine in zip(good, local):
            (p,), (q,) = f["persons"], mine
            assert (p["bbox"], p["boxSource"]) == (q["bbox"], q["boxSource"])
            assert np.abs(np.array(p["keypoints"]) - np.array(q["keypoints"])).max() <= 0.05  # rounding, other BLAS
    assert "POSE_TEST_TINY_MODELS is set" in w.stderr_text()


_backend = {}


def backend(models_dir, monkeypatch):
    if "b" not in _backend:
        monkeypatch.setenv(TINY_MODELS_ENV, "1")
        monkeypatch.setenv("POSE_TOPDOWN_BOXES", "movenet-lightning")
        ctx = LoadContext(
            model="vitpose-s",
            device=torch.device("cpu"),
            threads=2,
            models_dir=models_dir,
            repo_root=SERVICE_DIR.parent,
        )
        _backend["b"] = ViTPoseBackend.load(ctx)
    return _backend["b"]


def test_vitpose_worker_without_weights_fails_with_the_download_hint(spawn_worker, tmp_path):
    w = spawn_worker(model="vitpose-b", env={"POSE_MODELS_DIR": str(tmp_path)})
    msg = w.recv(timeout=60)
    assert msg["method"] == "worker/startupFailed", msg
    p = msg["params"]
    assert p["type"] == "ModelFilesMissing" and str(tmp_path / "vitpose-b.pth") in p["message"]
    assert "npm run models:download -- vitpose-b" in p["hint"]
    assert w.wait(30) == 3
