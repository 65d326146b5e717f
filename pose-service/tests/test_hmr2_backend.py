"""HMR2Backend in-process (tiny architecture, random weights in the official Lightning container, fake SMPL)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import rgb
from posepool_worker.backends.base import LoadContext
from posepool_worker.backends.hmr2 import HMR2Backend, camera
from posepool_worker.backends.hmr2.config import CHECKPOINT, J19_REGRESSOR, TINY
from posepool_worker.backends.hmr2.network import HMR2Net
from posepool_worker.errors import StartupError
from test_topdown_fakes import hmr2_models_dir

TINY_SHAPES = {k: v.shape for k, v in HMR2Net(TINY, device=torch.device("meta")).state_dict().items()}


def ctx(models_dir):
    return LoadContext(
        model="hmr2",
        device=torch.device("cpu"),
        threads=1,
        models_dir=Path(models_dir),
        repo_root=Path(__file__).resolve().parents[2],
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return hmr2_models_dir(tmp_path_factory.mktemp("models"), TINY_SHAPES)


def test_missing_files_name_the_fix(tmp_path, tiny_env, models):
    with pytest.raises(StartupError) as err:
        HMR2Backend.load(ctx(tmp_path))
    assert err.value.type == "ModelFilesMissing" and "npm run models:download -- hmr2" in err.value.hint
    assert CHECKPOINT.split("/")[-1] in err.value.message
    # checkpoint and J19 present, SMPL absent: the licence/registration hint
    (tmp_path / CHECKPOINT).parent.mkdir(parents=True)
    (tmp_path / CHECKPOINT).symlink_to(models / CHECKPOINT)
    (tmp_path / J19_REGRESSOR).parent.mkdir(parents=True)
    (tmp_path / J19_REGRESSOR).symlink_to(models / J19_REGRESSOR)
    with pytest.raises(StartupError) as err:
        HMR2Backend.load(ctx(tmp_path))
    e = err.value
    assert e.type == "ModelFilesMissing" and "SMPL" in e.message and str(tmp_path / "SMPL_NEUTRAL.pkl") in e.message
    assert "https://smpl.is.tue.mpg.de" in e.hint and "register" in e.hint
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"\x80\x02garbage")
    with pytest.raises(StartupError) as err:
        HMR2Backend.load(ctx(tmp_path))
    assert err.value.type == "ModelFilesMissing" and "SMPL_NEUTRAL.pkl" in err.value.message


def test_detect_fields_and_geometry(tiny_env, models):
    b = HMR2Backend.load(ctx(models))
    imgs = [rgb("messi5.jpg"), rgb("basketball1.jpg")]
    out = b.detect(imgs, {})
    for img, persons in zip(imgs, out):
        (p,) = persons
        assert set(p) == {"score", "bbox", "keypoints", "boxSource", "smpl", "camera", "joints3d"}
        assert p["boxSource"] == "full-frame" and p["bbox"] == [0, 0, img.shape[1], img.shape[0]]
        assert len(p["keypoints"]) == 17 and all(s in (0.0, 1.0) for _, _, s in p["keypoints"])
        smpl = p["smpl"]
        assert smpl["rotation"] == "matrix" and len(smpl["betas"]) == 10
        rots = np.array([smpl["globalOrient"]] + smpl["bodyPose"])
        assert rots.shape == (24, 3, 3)
        assert np.allclose(rots @ rots.transpose(0, 2, 1), np.eye(3), atol=1e-4)
        assert np.array(p["joints3d"]).shape == (44, 3)
        cam = p["camera"]
        assert cam["principalPoint"] == [img.shape[1] / 2, img.shape[0] / 2]
        assert cam["focalLength"] == pytest.approx(5000 / 256 * max(img.shape[:2]), abs=0.01)
        # keypoints = the crop projection of the OpenPose joints, mapped through the crop (recomputed here)
        center, side = b.crops([img], b.boxes.rider_boxes([img], {}))[1:]
        j = torch.tensor(p["joints3d"])[None]
        t = camera.crop_translation(torch.tensor([cam["cropCamera"]]), 5000.0, 256)
        kp = camera.crop_to_image(
            camera.project_to_crop(j, t, 5000.0, 256), torch.tensor(center).float(), torch.tensor(side).float()
        )[0, list(camera.OPENPOSE_TO_COCO17)]
        assert np.allclose(np.array(p["keypoints"])[:, :2], kp.numpy(), atol=0.05)
        # and the full-image camera reprojects the body to about the same pixels
        pc = np.array(p["joints3d"]) + np.array(cam["translation"])
        full = pc[:, :2] / pc[:, 2:3] * cam["focalLength"] + np.array(cam["principalPoint"])
        assert np.abs(full[list(camera.OPENPOSE_TO_COCO17)] - np.array(p["keypoints"])[:, :2]).max() < 2.0


def test_vertices_only_when_asked_and_batches_agree(tiny_env, models):
    b = HMR2Backend.load(ctx(models))
    imgs = [rgb("messi5.jpg"), rgb("basketball1.jpg")]
    with_v = b.detect(imgs, {"vertices": True})
    assert np.array(with_v[0][0]["vertices"]).shape == (6890, 3)
    alone = b.detect(imgs[1:], {})
    assert "vertices" not in alone[0][0]
    assert np.allclose(np.array(with_v[1][0]["joints3d"]), np.array(alone[0][0]["joints3d"]), atol=1e-3)
    assert b.detect([], {}) == []


def test_antialias_crop_of_a_large_box_is_used(tiny_env, models):
    b = HMR2Backend.load(ctx(models))
    big = cv2.resize(rgb("basketball1.jpg"), (1920, 1440))  # full-frame box grown to 1920 x 2560: side 2560
    crops, _centers, sides = b.crops([big], b.boxes.rider_boxes([big], {}))  # blur sigma (2560/256/2 - 1)/2 = 2
    assert crops.shape == (1, 256, 256, 3) and sides[0] == pytest.approx(2560)
    direct = cv2.warpAffine(big, np.array([[0.1, 0, 128 - 96.0], [0, 0.1, 128 - 72.0]]), (256, 256))
    assert np.abs(crops[0].astype(int) - direct.astype(int)).mean() < 12  # blurred, not different
    assert np.abs(crops[0].astype(int) - direct.astype(int)).max() > 0
