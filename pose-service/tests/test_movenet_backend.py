"""MoveNetBackend end to end: letterbox pass, crop tracking from frame to frame, persons in pixels, no-person
frames, chunked inference, and the real worker process serving movenet-lightning."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FIXTURES, jpeg_frame, rgb
from posepool_worker.backends.base import COCO17_KEYPOINTS, LoadContext
from posepool_worker.backends.movenet import MoveNetBackend, crop

REPO = Path(__file__).resolve().parents[2]
REF_DIR = FIXTURES / "movenet"
NOSE, L_SHOULDER, L_HIP, L_ANKLE = 0, 5, 11, 15


@pytest.fixture(scope="module", params=["movenet-thunder", "movenet-lightning"])
def backend(request):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker with --threads 1; restored for the tests that follow
    ctx = LoadContext(
        model=request.param,
        device=torch.device("cpu"),
        threads=1,
        models_dir=REPO / "pose-service/.models",
        repo_root=REPO,
    )
    yield MoveNetBackend.load(ctx)
    torch.set_num_threads(threads)


def tfjs_reference(model, name):
    """The TF.js output for a fixture entry, mapped to image pixels (x, y, score)."""
    index = json.loads((REF_DIR / f"index-{model}.json").read_text())["entries"]
    outputs = json.loads((REF_DIR / f"tfjs-{model}.json").read_text())["outputs"]
    i = [e["name"] for e in index].index(name)
    e = index[i]
    return crop.keypoints_to_image(np.array(outputs[i], np.float32), tuple(e["box"]), e["height"], e["width"])


def test_still_images_give_one_person_in_pixels(backend):
    for name in ("messi5.jpg", "basketball1.jpg"):
        img = rgb(name)
        h, w = img.shape[:2]
        [persons] = backend.detect([img], {})
        assert len(persons) == 1
        p = persons[0]
        assert set(p) == {"score", "bbox", "keypoints"}
        assert 0.25 <= p["score"] <= 1.0
        kp = np.array(p["keypoints"])
        assert kp.shape == (len(COCO17_KEYPOINTS), 3)
        confident = kp[kp[:, 2] >= 0.2]
        assert (confident[:, 0] > -5).all() and (confident[:, 0] < w + 5).all()
        assert (confident[:, 1] > -5).all() and (confident[:, 1] < h + 5).all()
        x, y, bw, bh = p["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= w + 1e-6 and y + bh <= h + 1e-6 and bw > 20 and bh > 20
    # basketball1: a standing player, nose above shoulders above hips above ankles
    kp = np.array(backend.detect([rgb("basketball1.jpg")], {})[0][0]["keypoints"])
    assert kp[NOSE, 1] < kp[L_SHOULDER, 1] < kp[L_HIP, 1] < kp[L_ANKLE, 1]


def test_letterbox_pass_matches_tfjs_end_to_end(backend):
    """tracking off: decode -> letterbox crop -> model -> pixels equals TF.js on the committed letterbox input."""
    for stem in ("messi5", "basketball1"):
        img = rgb(stem + ".jpg")
        side = max(img.shape[:2])
        ref = tfjs_reference(backend.model_name, stem)
        kp = np.array(backend.detect([img], {"tracking": False})[0][0]["keypoints"])
        assert np.abs(kp[:, :2] - ref[:, :2]).max() <= 0.002 * side + 0.01
        assert np.abs(kp[:, 2] - ref[:, 2]).max() <= 0.01


def test_tracking_pass_uses_the_torso_crop_and_matches_tfjs(backend):
    """tracking on: pass 2 poses the crop tfjs-models' determineCropRegion gives; equals TF.js on that crop."""
    for stem in ("messi5", "basketball1"):
        img = rgb(stem + ".jpg")
        side = max(img.shape[:2])
        ref = tfjs_reference(backend.model_name, stem + ":crop")
        kp = np.array(backend.detect([img], {"tracking": True})[0][0]["keypoints"])
        assert np.abs(kp[:, :2] - ref[:, :2]).max() <= 0.002 * side + 0.01
        assert np.abs(kp[:, 2] - ref[:, 2]).max() <= 0.01


def spy_on_infer(backend, monkeypatch):
    calls = []
    real_infer = backend.infer

    def spy(inputs):
        calls.append(len(inputs))
        return real_infer(inputs)

    monkeypatch.setattr(backend, "infer", spy)
    return calls


def test_tracking_chains_the_crop_from_frame_to_frame(backend, monkeypatch):
    """A video's frames: the first detected afresh (letterbox + crop), each next one posed once, on the crop
    from the frame before it; the same person throughout."""
    calls = spy_on_infer(backend, monkeypatch)
    img = rgb("messi5.jpg")
    out = backend.detect([img] * 4, {})
    assert calls == [1, 1, 1, 1, 1]
    assert all(len(p) == 1 for p in out)
    first = np.array(out[0][0]["keypoints"])
    for p in out[1:]:
        kp = np.array(p[0]["keypoints"])
        both = (first[:, 2] > 0.3) & (kp[:, 2] > 0.3)
        assert both.sum() >= 10 and np.abs(kp[both, :2] - first[both, :2]).max() < 0.05 * max(img.shape[:2])


def test_tracking_resets_when_the_person_is_lost(backend, monkeypatch):
    """A frame where the crop finds nobody is detected afresh (letterbox pass); the frame after it starts over."""
    calls = spy_on_infer(backend, monkeypatch)
    img = rgb("messi5.jpg")
    blank = np.zeros_like(img)
    out = backend.detect([img, blank, img], {})
    assert [len(p) for p in out] == [1, 0, 1]
    # img: letterbox + crop; blank: crop (lost) + letterbox (nobody) + the letterbox turned 180 degrees (nobody
    # either: the batch's one turned pass that finds nothing); img: letterbox + crop
    assert calls == [1, 1, 1, 1, 1, 1, 1]


def test_tracking_does_not_chain_across_a_missing_frame(backend, monkeypatch):
    """The worker leaves out frames that failed to decode: frame 3 after frame 1 is detected afresh."""
    calls = spy_on_infer(backend, monkeypatch)
    img = rgb("messi5.jpg")
    backend.detect([img, img, img], {"indices": [0, 1, 3]})
    assert calls == [1, 1, 1, 1, 1]  # 0: letterbox + crop; 1: chained crop; 3: letterbox + crop
    calls.clear()
    backend.detect([img, img, img], {"indices": [0, 1, 2]})
    assert calls == [1, 1, 1, 1]


def test_tracking_does_not_chain_frames_of_another_size(backend, monkeypatch):
    calls = spy_on_infer(backend, monkeypatch)
    out = backend.detect([rgb("messi5.jpg"), rgb("basketball1.jpg"), np.zeros((120, 160, 3), np.uint8)], {})
    assert [len(p) for p in out] == [1, 1, 0]
    assert calls == [1, 1, 1, 1, 1, 1]  # each detected afresh: 2 + 2 + 2 (nobody: no crop, one turned pass)


def test_batched_tracking_for_accelerators_detects_every_frame_afresh_in_two_passes(backend, monkeypatch):
    """What detect does with tracking on CUDA: all frames letterboxed in one call, then the small persons'
    crops in one call; a frame with nobody gets no second pass, but is tried turned 180 degrees (one call). Same
    keypoints as each frame detected alone."""
    calls = spy_on_infer(backend, monkeypatch)
    images = [rgb("messi5.jpg"), rgb("basketball1.jpg"), np.zeros((120, 160, 3), np.uint8)]
    out = backend.detect_afresh(images)
    assert calls == [3, 2, 1]
    alone = [backend.detect_afresh([img])[0] for img in images]
    for a, b in zip(out, alone):
        assert np.abs(a - b).max() < 0.05


def torso(kp):
    return np.linalg.norm(kp[[5, 6], :2].mean(axis=0) - kp[[11, 12], :2].mean(axis=0))


def upside_down(kp, height, width):
    """Keypoints posed on the frame turned 180 degrees, in the upright frame's pixels."""
    return np.stack([width - kp[:, 0], height - kp[:, 1], kp[:, 2]], axis=1)


def test_a_person_upside_down_is_found_by_turning_the_frame(backend, monkeypatch):
    """A fresh detection that scores low tries the frame turned 180 degrees and keeps that pose, mapped back to
    the frame's pixels: it lands on the upright pose (the upside-down letterbox pass alone is off by about a
    torso length)."""
    img = rgb("messi5.jpg")
    h, w = img.shape[:2]
    upright = np.array(backend.detect([img], {})[0][0]["keypoints"])
    calls = spy_on_infer(backend, monkeypatch)
    turned = np.ascontiguousarray(img[::-1, ::-1])
    [persons] = backend.detect([turned], {})
    assert len(calls) >= 2  # the letterbox pass (and its crop), then the frame turned
    kp = upside_down(np.array(persons[0]["keypoints"]), h, w)
    assert np.median(np.hypot(*(kp[:, :2] - upright[:, :2]).T)) < 0.15 * torso(upright)
    assert persons[0]["score"] >= 0.45


def test_the_tracker_turns_its_crop_with_the_body(backend, monkeypatch):
    """A body upside down in every frame: after the fresh detection of the first, each frame is one inference on a
    crop turned to the body's axis (about 180 degrees), and its pose stays on the person."""
    img = rgb("messi5.jpg")
    h, w = img.shape[:2]
    upright = np.array(backend.detect([img], {})[0][0]["keypoints"])
    turned = np.ascontiguousarray(img[::-1, ::-1])
    regions = []
    real = backend.pose_regions

    def spy(images, rs):
        regions.append(rs)
        return real(images, rs)

    monkeypatch.setattr(backend, "pose_regions", spy)
    out = backend.detect([turned] * 4, {})
    chained = regions[-3:]
    assert all(len(rs) == 1 and abs(rs[0].angle) > 2.5 for rs in chained)  # one crop per frame, turned
    for p in out:
        kp = upside_down(np.array(p[0]["keypoints"]), h, w)
        assert np.median(np.hypot(*(kp[:, :2] - upright[:, :2]).T)) < 0.15 * torso(upright)


def test_turned_passes_that_find_nothing_are_budgeted_per_batch(backend, monkeypatch):
    """Frames with nobody: each letterboxed once; the batch tries one turned pass in all (not three per frame)."""
    calls = spy_on_infer(backend, monkeypatch)
    assert backend.detect([np.zeros((120, 160, 3), np.uint8)] * 4, {}) == [[], [], [], []]
    assert calls == [1, 1, 1, 1, 1]


def test_without_tracking_one_batched_pass(backend, monkeypatch):
    calls = spy_on_infer(backend, monkeypatch)
    images = [rgb("messi5.jpg"), rgb("basketball1.jpg"), np.zeros((120, 160, 3), np.uint8)]
    out = backend.detect(images, {"tracking": False})
    assert calls == [3] and [len(p) for p in out] == [1, 1, 0]


def test_cpu_inference_runs_in_chunks_with_the_same_results(backend, monkeypatch):
    s = backend.input_size
    inputs = np.random.default_rng(1).integers(0, 256, (10, s, s, 3)).astype(np.int32)
    sizes = []
    real_net = backend.net

    def net(x):
        sizes.append(x.shape[0])
        return real_net(x)

    monkeypatch.setattr(backend, "net", net)
    chunked = backend.infer(inputs)
    assert sizes == {"movenet-thunder": [2, 2, 2, 2, 2], "movenet-lightning": [8, 2]}[backend.model_name]
    one_by_one = np.concatenate([backend.infer(inputs[i : i + 1]) for i in range(10)])
    assert chunked.shape == (10, 17, 3)
    assert np.abs(chunked - one_by_one).max() < 1e-4


def test_results_do_not_depend_on_the_batch(backend):
    images = [rgb("messi5.jpg"), np.zeros((64, 64, 3), np.uint8), rgb("basketball1.jpg")]
    together = backend.detect(images, {})
    alone = [backend.detect([img], {})[0] for img in images]
    assert [len(p) for p in together] == [len(p) for p in alone] == [1, 0, 1]
    for a, b in zip(together, alone):
        if a:
            assert np.abs(np.array(a[0]["keypoints"]) - np.array(b[0]["keypoints"])).max() < 0.05


def test_no_person_is_an_empty_list(backend):
    blank = [
        np.zeros((240, 320, 3), np.uint8),
        np.full((300, 200, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8),
    ]
    assert backend.detect(blank, {}) == [[], [], []]
    assert backend.detect([], {}) == []


def test_worker_process_serves_movenet(spawn_worker):
    worker = spawn_worker(model="movenet-lightning", threads=1)
    ready = worker.wait_ready(timeout=120)
    assert ready["model"]["name"] == "movenet-lightning"
    assert ready["model"]["keypoints"] == COCO17_KEYPOINTS
    result = worker.call(
        "detect", {"requestId": "t", "frames": [jpeg_frame(0), jpeg_frame(1, FIXTURES / "basketball1.jpg")]}, timeout=60
    )
    frames = result["frames"]
    assert [f["index"] for f in frames] == [0, 1]
    assert all(len(f["persons"]) == 1 and len(f["persons"][0]["keypoints"]) == 17 for f in frames)


def test_worker_reports_missing_model_files(spawn_worker, tmp_path):
    worker = spawn_worker(model="movenet-thunder", env={"POSE_MOVENET_DIR": str(tmp_path)})
    msg = worker.recv(timeout=120)
    assert msg["method"] == "worker/startupFailed"
    params = msg["params"]
    assert params["type"] == "ModelFilesMissing"
    assert str(tmp_path / "movenet-thunder.json") in params["message"]
    assert "POSE_MOVENET_DIR" in params["hint"]
    assert worker.wait(30) != 0
