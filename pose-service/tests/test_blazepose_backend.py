"""BlazePoseBackend end to end: real fixture images posed (upright and turned people), the committed TF.js poses,
the person fields and extras, tracking across a batch, no-person frames, and the real worker process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FIXTURES, SERVICE_DIR, jpeg_frame, rgb
from posepool_worker import protocol
from posepool_worker.backends.base import COCO17_KEYPOINTS, LoadContext
from posepool_worker.backends.blazepose import BlazePoseBackend
from posepool_worker.backends.blazepose import landmarks as lm
from posepool_worker.runtime import disable_unusable_nnpack

sys.path.insert(0, str(SERVICE_DIR / "eval"))
import fidelity

REPO = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((FIXTURES / "blazepose" / "tfjs-blazepose.json").read_text())
NAMES33, _ = protocol.keypoint_set("blazepose33")
NOSE, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_ANKLE, R_ANKLE, R_HEEL, R_FOOT = 0, 11, 12, 23, 24, 27, 28, 30, 32


def load(model: str) -> BlazePoseBackend:
    ctx = LoadContext(model, torch.device("cpu"), 1, REPO / "pose-service/.models", REPO)
    return BlazePoseBackend.load(ctx)


@pytest.fixture(scope="module")
def one_thread():
    disable_unusable_nnpack()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker with --threads 1; restored for the tests that follow
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lite(one_thread):
    return load("blazepose-lite")


def parity_image(name: str) -> np.ndarray:
    """The still images of the committed TF.js reference, as pose-service/parity/blazepose_parity_helper.py makes
    them."""
    base = rgb(name.split("-")[0] + ".jpg")
    turns = {"messi5-rot90": 1, "messi5-rot180": 2}
    return np.ascontiguousarray(np.rot90(base, turns[name])) if name in turns else base


@pytest.mark.parametrize("model", ["blazepose-lite", "blazepose-full", "blazepose-heavy"])
def test_poses_match_the_committed_tfjs_reference(one_thread, model):
    """tests/fixtures/blazepose/tfjs-blazepose.json: TF.js-WASM running tfjs-models' pipeline on the same files
    (blazepose-parity.test.ts checks it against TF.js live). Bounds allow another JPEG decoder's rounding."""
    backend = load(model)
    assert REFERENCE["images"] == ["messi5", "basketball1", "messi5-rot90", "messi5-rot180"]
    for name in REFERENCE["images"]:
        ref = REFERENCE["models"][model][name]
        [pose] = backend.pose_afresh([parity_image(name)])
        assert pose is not None and ref is not None, name
        kp, ref_kp = pose.keypoints[:, :4], np.array(ref["keypoints"])
        assert np.abs(kp[:, :2] - ref_kp[:, :2]).max() < 0.5, name
        assert np.abs(kp[:, 3] - ref_kp[:, 3]).max() < 0.01, name
        assert np.abs(pose.world - np.array(ref["world"])).max() < 0.005, name
        assert pose.score == pytest.approx(ref["score"], abs=1e-3)
        assert pose.roi.rotation == pytest.approx(ref["roi"]["rotation"], abs=1e-3)


def test_a_still_image_gives_one_upright_person_with_33_points(lite):
    img = rgb("messi5.jpg")
    h, w = img.shape[:2]
    [persons] = lite.detect([img], {"tracking": False})
    assert len(persons) == 1
    p = persons[0]
    assert (
        set(p)
        == {"score", "bbox", "keypoints", "keypoints33", "worldKeypoints33"}
        == {"score", "bbox", "keypoints", *lite.extras}
    )
    assert 0.5 <= p["score"] <= 1.0
    kp = np.array(p["keypoints"])
    kp33 = np.array(p["keypoints33"])
    world = np.array(p["worldKeypoints33"])
    assert kp.shape == (17, 3) and kp33.shape == (33, 4) and world.shape == (33, 3)
    assert len(COCO17_KEYPOINTS) == 17 and len(NAMES33) == 33
    # COCO-17 is the 33's nose, eye centres, ears, ... by name: same values
    assert np.allclose(kp, kp33[list(lm.COCO17_FROM_BLAZEPOSE33)][:, [0, 1, 3]])
    # a footballer shooting: nose above shoulders above hips above ankles, the standing foot's heel and toes lowest
    ys = kp33[:, 1]
    assert (
        ys[NOSE] < min(ys[L_SHOULDER], ys[R_SHOULDER]) < max(ys[L_SHOULDER], ys[R_SHOULDER]) < min(ys[L_HIP], ys[R_HIP])
    )
    assert max(ys[L_HIP], ys[R_HIP]) < min(ys[L_ANKLE], ys[R_ANKLE])
    assert ys.max() in (ys[R_HEEL], ys[R_FOOT]) and ys.max() < h
    assert (kp33[:, 0] > 0).all() and (kp33[:, 0] < w).all() and (kp33[:, 1] > 0).all()
    assert (kp33[:, 3] > 0.5).all()  # every point in view
    # world: metres, origin between the hips, y down
    hips = (world[L_HIP] + world[R_HIP]) / 2
    assert np.abs(hips).max() < 0.05
    assert world[NOSE, 1] < -0.3 and world[R_ANKLE, 1] > 0.3
    assert 0.8 < world[R_FOOT, 1] - world[NOSE, 1] < 2.2  # a person's height, roughly
    x, y, bw, bh = p["bbox"]
    assert x >= 0 and y >= 0 and x + bw <= w + 1e-6 and y + bh <= h + 1e-6 and bh > 200 and bw > 300


def test_a_turned_person_is_found_with_a_turned_roi(lite):
    upright = lite.pose_afresh([rgb("messi5.jpg")])[0]
    turned = lite.pose_afresh([np.ascontiguousarray(np.rot90(rgb("messi5.jpg"), 1))])[0]
    assert upright is not None and turned is not None
    assert abs(abs(turned.roi.rotation - upright.roi.rotation) - np.pi / 2) < 0.3
    # the same person: the keypoints turn with the image (counter-clockwise by 90: (x, y) -> (y, W - 1 - x))
    w = 548
    expected = np.stack([upright.keypoints[:, 1], w - 1 - upright.keypoints[:, 0]], axis=1)
    assert np.median(np.hypot(*(turned.keypoints[:, :2] - expected).T)) < 6


def test_a_rider_upside_down_the_detector_misses_is_found_turned(lite):
    """Issue 20: the detector misses this frame turned 180 degrees (as in a flip); the turned detector pass finds
    the person, and the pose, in the ROI turned with the body, lands where the upright frame's pose does."""
    frame = fidelity.read_clip(REPO / "server/test/fixtures/messi-pan.mp4", 1)[0]  # the eval's clip reader
    h, w = frame.shape[:2]
    flipped = np.ascontiguousarray(np.rot90(frame, 2))
    assert lite.detect_rois([flipped]) == [None]  # not turned: nobody
    upright = lite.pose_afresh([frame])[0]
    [found] = lite.pose_afresh([flipped])
    assert upright is not None and found is not None
    assert abs(abs(found.roi.rotation - upright.roi.rotation) - np.pi) < 0.3
    mapped = np.stack([w - found.keypoints[:, 0], h - found.keypoints[:, 1]], axis=1)
    torso = np.hypot(*(upright.keypoints[L_SHOULDER, :2] - upright.keypoints[L_HIP, :2]))
    assert np.median(np.hypot(*(mapped - upright.keypoints[:, :2]).T)) < 0.1 * torso


def test_turned_detector_passes_that_find_nobody_stay_within_the_budget(lite, monkeypatch):
    """Frames with nobody in them: one turned detector pass per batch finds nobody, then no more turns."""
    calls = []
    detect = lite.nets.detect
    monkeypatch.setattr(lite.nets, "detect", lambda x: calls.append(len(x)) or detect(x))
    blank = [np.full((240, 320, 3), 128, np.uint8)] * 4
    assert lite.detect(blank, {"tracking": True, "indices": [0, 1, 2, 3]}) == [[], [], [], []]
    assert sum(calls) == 4 + 1  # each frame upright, and one turn for the batch


def test_tracking_runs_the_detector_once_per_chain(lite, monkeypatch):
    base = rgb("messi5.jpg")
    frames = [np.ascontiguousarray(np.roll(base, 12 * k, axis=1)) for k in range(4)]  # the person moving right
    calls = []
    detect = lite.nets.detect
    monkeypatch.setattr(lite.nets, "detect", lambda x: calls.append(len(x)) or detect(x))
    tracked = lite.detect(frames, {"tracking": True, "indices": [0, 1, 2, 3]})
    assert calls == [1]  # the first frame only; the others in the ROI from the frame before
    assert all(len(p) == 1 for p in tracked)
    noses = [p[0]["keypoints33"][NOSE][0] for p in tracked]
    assert np.diff(noses) == pytest.approx([12, 12, 12], abs=4)  # followed (a few pixels of jitter)
    # a gap in the frame indices (a frame failed to decode) starts the chain afresh
    calls.clear()
    lite.detect(frames, {"tracking": True, "indices": [0, 1, 5, 6]})
    assert calls == [1, 1]
    # without tracking, every frame is detected (one batched pass)
    calls.clear()
    untracked = lite.detect(frames, {"tracking": False})
    assert sum(calls) == 4
    for a, b in zip(tracked, untracked):
        assert np.median(np.abs(np.array(a[0]["keypoints"])[:, :2] - np.array(b[0]["keypoints"])[:, :2])) < 5


def test_a_tracked_frame_that_lost_the_person_is_detected_afresh(lite):
    person, empty = rgb("messi5.jpg"), np.zeros((342, 548, 3), np.uint8)
    out = lite.detect([person, empty, person], {"tracking": True, "indices": [0, 1, 2]})
    assert [len(p) for p in out] == [1, 0, 1]


def test_no_person_is_an_empty_list(lite):
    blank = [
        np.zeros((240, 320, 3), np.uint8),
        np.full((300, 200, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8),
    ]
    assert lite.detect(blank, {"tracking": False}) == [[], [], []]
    assert lite.detect(blank, {}) == [[], [], []]
    assert lite.detect([], {}) == []


def test_unknown_model_and_missing_files_are_startup_errors(one_thread, monkeypatch, tmp_path):
    from posepool_worker.errors import StartupError

    with pytest.raises(StartupError) as info:
        load("blazepose-medium")
    assert info.value.type == "UnknownModel"
    monkeypatch.setenv("POSE_MOVENET_DIR", str(tmp_path))
    with pytest.raises(StartupError) as info:
        load("blazepose-lite")
    assert info.value.type == "ModelFilesMissing" and "blazepose-detector.json" in info.value.message
    assert "POSE_MOVENET_DIR" in info.value.hint


def test_worker_process_serves_blazepose(spawn_worker):
    worker = spawn_worker(model="blazepose-lite", threads=1)
    ready = worker.wait_ready(timeout=180)
    assert ready["model"]["name"] == "blazepose-lite"
    assert ready["model"]["keypoints"] == COCO17_KEYPOINTS
    assert (
        ready["model"]["extras"] == ["keypoints33", "worldKeypoints33"] == protocol.MODELS["blazepose-lite"]["extras"]
    )
    frames = [jpeg_frame(0), jpeg_frame(1, FIXTURES / "basketball1.jpg")]
    result = worker.call("detect", {"requestId": "t", "frames": frames, "options": {"tracking": False}}, timeout=120)
    assert [f["index"] for f in result["frames"]] == [0, 1]
    for f in result["frames"]:
        [p] = f["persons"]
        assert len(p["keypoints"]) == 17 and len(p["keypoints33"]) == 33 and len(p["worldKeypoints33"]) == 33
        assert all(len(k) == 4 for k in p["keypoints33"]) and all(len(k) == 3 for k in p["worldKeypoints33"])
