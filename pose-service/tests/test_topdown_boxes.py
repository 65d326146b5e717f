"""Rider boxes: the largest, most central person; the full frame when there is none; MoveNet as the source."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import FIXTURES
from posepool_worker.backends.base import LoadContext
from posepool_worker.backends.topdown import boxes
from posepool_worker.errors import FrameError, StartupError

W, H = 640, 480


def person(bbox, score=0.8):
    return {"score": score, "bbox": bbox, "keypoints": [[0, 0, 0]] * 17}


def test_largest_most_central_person_is_the_rider():
    small_central = person([300, 220, 40, 40])
    large_corner = person([0, 0, 120, 120])
    large_central = person([240, 140, 160, 200], score=0.5)
    box = boxes.choose_rider([small_central, large_corner, large_central], W, H)
    assert box.xywh == [240, 140, 160, 200] and box.source == "movenet" and box.score == 0.5


def test_centrality_breaks_a_tie_in_size():
    corner = person([0, 0, 100, 100])
    centre = person([270, 190, 100, 100])
    assert boxes.choose_rider([corner, centre], W, H).xywh == [270, 190, 100, 100]
    assert boxes.rider_rank([270, 190, 100, 100], W, H) > boxes.rider_rank([0, 0, 100, 100], W, H)


def test_no_person_a_frame_error_or_a_tiny_box_fall_back_to_the_full_frame():
    for result in (
        [],
        FrameError("INFERENCE_FAILED", "x"),
        [person([10, 10, 5, 50])],
        [person([0, 0, float("nan"), 3])],
    ):
        box = boxes.choose_rider(result, W, H)
        assert box.xywh == [0.0, 0.0, W, H] and box.source == "full-frame" and box.score == 0.0


def test_boxes_are_clipped_to_the_frame():
    box = boxes.choose_rider([person([-20, 400, 100, 200])], W, H)
    assert box.xywh == [0.0, 400.0, 80.0, 80.0]


def test_box_source_passes_options_and_returns_one_box_per_image():
    seen = {}

    def stub(images, options):
        seen["options"] = options
        return [[person([10, 20, 100, 200])], []]

    src = boxes.PersonBoxSource(stub, "stub")
    imgs = [np.zeros((H, W, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)]
    out = src.rider_boxes(imgs, {"tracking": False})
    assert seen["options"] == {"tracking": False}
    assert out[0].xywh == [10, 20, 100, 200] and out[1].xywh == [0, 0, 50, 100] and out[1].source == "full-frame"
    with pytest.raises(RuntimeError):
        boxes.PersonBoxSource(lambda i, o: [], "bad").rider_boxes(imgs, {})


def ctx(model="vitpose-b"):
    return LoadContext(
        model=model,
        device=torch.device("cpu"),
        threads=1,
        models_dir=Path("/nonexistent"),
        repo_root=Path(__file__).resolve().parents[2],
    )


def test_env_selects_the_source(monkeypatch):
    monkeypatch.setenv(boxes.BOX_SOURCE_ENV, "full-frame")
    src = boxes.PersonBoxSource.from_env(ctx())
    assert src.detect is None
    assert src.rider_boxes([np.zeros((10, 20, 3), np.uint8)], {})[0].xywh == [0, 0, 20, 10]
    monkeypatch.setenv(boxes.BOX_SOURCE_ENV, "yolo")
    with pytest.raises(StartupError) as err:
        boxes.PersonBoxSource.from_env(ctx())
    assert err.value.type == "BadConfiguration" and "movenet-thunder" in err.value.hint


def test_movenet_gives_the_rider_box_on_a_real_frame(monkeypatch):
    """The real MoveNet backend (bundled files) as box source: Messi's box on messi5.jpg."""
    monkeypatch.setenv(boxes.BOX_SOURCE_ENV, "movenet-lightning")
    src = boxes.PersonBoxSource.from_env(ctx())
    img = cv2.cvtColor(cv2.imread(str(FIXTURES / "messi5.jpg")), cv2.COLOR_BGR2RGB)
    (box,) = src.rider_boxes([img], {"tracking": True})
    assert box.source == "movenet" and box.score > 0.25
    x, y, w, h = box.xywh
    assert x >= 0 and y >= 0 and x + w <= img.shape[1] and y + h <= img.shape[0]
    assert 0.05 < w * h / (img.shape[0] * img.shape[1]) < 0.9  # a person, not the frame


def test_blazepose_gives_the_rider_box_on_a_real_frame(monkeypatch):
    """BlazePose (bundled files) as box source: Messi's box on messi5.jpg, feet included, labelled blazepose."""
    monkeypatch.setenv(boxes.BOX_SOURCE_ENV, "blazepose-lite")
    src = boxes.PersonBoxSource.from_env(ctx())
    img = cv2.cvtColor(cv2.imread(str(FIXTURES / "messi5.jpg")), cv2.COLOR_BGR2RGB)
    (box,) = src.rider_boxes([img], {"tracking": True})
    assert box.source == "blazepose" and box.score > 0.5
    x, y, w, h = box.xywh
    assert x >= 0 and y >= 0 and x + w <= img.shape[1] and y + h <= img.shape[0]
    assert 0.05 < w * h / (img.shape[0] * img.shape[1]) < 0.9
    assert y + h > 0.9 * img.shape[0]  # down to the standing foot's toes
