"""ViTPoseBackend in-process: missing/corrupt/mismatched files, and the crop -> heatmap -> pixel path.

A "dot finder" stand-in network (heatmap peak where the crop's brightest pixel is) gives known answers, so
the box -> UDP crop -> heatmap -> DARK -> image mapping is checked end to end without trained weights.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import rgb
from posepool_worker.backends.base import LoadContext
from posepool_worker.backends.topdown.boxes import PersonBoxSource
from posepool_worker.backends.topdown.test_settings import TINY_MODELS_ENV
from posepool_worker.backends.vitpose import ViTPoseBackend
from posepool_worker.backends.vitpose.config import TINY
from posepool_worker.backends.vitpose.decode import flip_back
from posepool_worker.backends.vitpose.network import ViTPoseNet
from posepool_worker.errors import StartupError
from test_topdown_fakes import write_vitpose_checkpoint

TINY_SHAPES = {k: v.shape for k, v in ViTPoseNet(TINY, device=torch.device("meta")).state_dict().items()}


def ctx(models_dir, model="vitpose-s"):
    return LoadContext(
        model=model,
        device=torch.device("cpu"),
        threads=1,
        models_dir=Path(models_dir),
        repo_root=Path(__file__).resolve().parents[2],
    )


def test_missing_weights_point_to_the_download_command(tmp_path, tiny_env):
    with pytest.raises(StartupError) as err:
        ViTPoseBackend.load(ctx(tmp_path, "vitpose-b"))
    e = err.value
    assert e.type == "ModelFilesMissing" and str(tmp_path / "vitpose-b.pth") in e.message
    assert "npm run models:download -- vitpose-b" in e.hint


def test_corrupt_or_mismatched_weights_are_model_files_missing(tmp_path, tiny_env, monkeypatch):
    (tmp_path / "vitpose-l.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(StartupError) as err:
        ViTPoseBackend.load(ctx(tmp_path, "vitpose-l"))
    assert err.value.type == "ModelFilesMissing" and "delete it" in err.value.hint
    # a tiny checkpoint offered to the real ViTPose-S architecture: shapes do not match
    write_vitpose_checkpoint(tmp_path / "vitpose-s.pth", TINY_SHAPES)
    monkeypatch.delenv(TINY_MODELS_ENV)
    with pytest.raises(StartupError) as err:
        ViTPoseBackend.load(ctx(tmp_path, "vitpose-s"))
    assert "does not match the vitpose-s architecture" in err.value.message and "wrong shapes" in err.value.message


def test_loads_the_official_container_and_a_vitpose_plus_file(tmp_path, tiny_env):
    state = write_vitpose_checkpoint(tmp_path / "vitpose-s.pth", TINY_SHAPES, seed=1)
    b = ViTPoseBackend.load(ctx(tmp_path))
    assert all(torch.equal(b.net.state_dict()[k], v) for k, v in state.items())
    assert b.precision == "fp32" and not b.net.training and b.boxes.name == "full-frame"
    (tmp_path / "vitpose-s.pth").unlink()
    write_vitpose_checkpoint(tmp_path / "vitpose+_small.pth", TINY_SHAPES, seed=1, plus=True)
    b2 = ViTPoseBackend.load(ctx(tmp_path))
    assert all(torch.equal(b2.net.state_dict()[k], v) for k, v in state.items())


class DotFinder(nn.Module):
    """Heatmaps (all 17) peaked where the crop's brightest pixel is, in UDP heatmap coordinates."""

    def forward(self, x):
        n, _, h, w = x.shape
        flat = x[:, 0].reshape(n, -1).argmax(dim=1)
        cx, cy = (flat % w).float() * (47 / (w - 1)), (flat // w).float() * (63 / (h - 1))
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
        g = torch.exp(-((xs - cx.view(n, 1, 1)) ** 2 + (ys - cy.view(n, 1, 1)) ** 2) / 8.0)
        return g[:, None].expand(n, 17, 64, 48).contiguous()


def dot_backend(box_fn):
    return ViTPoseBackend("vitpose-s", TINY, DotFinder(), torch.device("cpu"), "fp32", PersonBoxSource(box_fn, "stub"))


@pytest.mark.parametrize("flip", [False, True])
def test_keypoints_land_on_the_image_point_the_crop_saw(flip):
    imgs, dots = [], [(260, 170), (120, 300), (340, 110)]  # the last near the padded box's corner
    for x, y in dots:
        img = np.zeros((480, 640, 3), np.uint8)
        cv2.circle(img, (x, y), 2, (255, 255, 255), -1)
        imgs.append(img)
    stub_boxes = [[200, 100, 150, 200], [60, 220, 150, 200], [200, 100, 150, 200]]
    b = dot_backend(lambda images, options: [[{"score": 0.9, "bbox": bb}] for bb in stub_boxes])
    out = b.detect(imgs, {"flipTest": flip})
    for (x, y), persons, bb in zip(dots, out, stub_boxes):
        (p,) = persons
        kp = np.array(p["keypoints"])
        assert kp.shape == (17, 3) and np.abs(kp[:, 0] - x).max() < 1.2 and np.abs(kp[:, 1] - y).max() < 1.2
        assert (
            p["bbox"] == bb and p["boxSource"] == "movenet" and p["score"] == pytest.approx(kp[:, 2].mean(), abs=1e-4)
        )


def test_flip_test_averages_with_the_mirrored_crop_and_batches_agree(tmp_path, tiny_env):
    write_vitpose_checkpoint(tmp_path / "vitpose-s.pth", TINY_SHAPES, seed=2)
    b = ViTPoseBackend.load(ctx(tmp_path))
    imgs = [rgb("messi5.jpg"), rgb("basketball1.jpg")]
    boxes = b.boxes.rider_boxes(imgs, {})
    crops, _, _ = b.crops(imgs, boxes)
    plain = b.heatmaps(crops, flip_test=False)
    with torch.no_grad():
        from posepool_worker.backends.topdown.crop import normalize_batch

        x = normalize_batch(crops, torch.device("cpu"))
        mirrored = b.net(x.flip(3)).numpy()
    expected = 0.5 * (plain + flip_back(mirrored))
    assert np.allclose(b.heatmaps(crops, flip_test=True), expected, atol=1e-5)
    both = b.detect(imgs, {"flipTest": True})
    one = b.detect(imgs[1:], {"flipTest": True})
    assert np.allclose(np.array(both[1][0]["keypoints"]), np.array(one[0][0]["keypoints"]), atol=0.02)
    assert both[0][0]["keypoints"] != b.detect(imgs[:1], {})[0][0]["keypoints"]  # flip test changes the answer
    assert b.detect([], {}) == []
