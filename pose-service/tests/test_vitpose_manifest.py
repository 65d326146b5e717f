"""ViTPose-S/B/L/H: our modules' state_dict == the committed manifests derived from the official code.

The manifests (pose-service/manifests/*.json) were produced by manifests/derive_manifests.py from
ViTAE-Transformer/ViTPose's own ViT and TopdownHeatmapSimpleHead classes and the four COCO configs; the models
are built here on the meta device (no memory, no init), so even ViT-H costs nothing.
"""

import json
from pathlib import Path

import pytest
import torch

from posepool_worker.backends.topdown.checkpoints import read_checkpoint
from posepool_worker.backends.vitpose.config import SIZES, TINY
from posepool_worker.backends.vitpose.network import ViTPoseNet
from posepool_worker.backends.vitpose.weights import to_model_state
from test_topdown_fakes import random_state, write_vitpose_checkpoint

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


def manifest(name: str) -> dict:
    return json.loads((MANIFESTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["vitpose-s", "vitpose-b", "vitpose-l", "vitpose-h"])
def test_state_dict_matches_the_official_manifest(name):
    doc = manifest(name)
    net = ViTPoseNet(SIZES[name], device=torch.device("meta"))
    state = net.state_dict()
    assert all(t.device.type == "meta" for t in state.values())
    ours = {k: list(v.shape) for k, v in state.items()}
    assert sorted(set(ours) ^ set(doc["tensors"])) == []
    assert ours == doc["tensors"]
    # the architecture facts the manifest was derived with are the ones our config states
    b = SIZES[name].backbone
    assert (doc["backbone"]["embed_dim"], doc["backbone"]["depth"], doc["backbone"]["num_heads"]) == (
        b.embed_dim,
        b.depth,
        b.num_heads,
    )
    assert doc["backbone"]["img_size"] == list(b.img_hw) and doc["backbone"]["patch_size"] == b.patch_size
    assert doc["derivedFrom"]["repository"] == "ViTAE-Transformer/ViTPose" and len(doc["derivedFrom"]["commit"]) == 40


def test_manifest_sizes_are_the_published_ones():
    """Independent of our code: 193 positions (16x12 tokens + cls slot), 17 heatmaps, widths 384/768/1024/1280."""
    for name, width, depth in (
        ("vitpose-s", 384, 12),
        ("vitpose-b", 768, 12),
        ("vitpose-l", 1024, 24),
        ("vitpose-h", 1280, 32),
    ):
        t = manifest(name)["tensors"]
        assert t["backbone.pos_embed"] == [1, 193, width]
        assert t["keypoint_head.final_layer.weight"] == [17, 256, 1, 1]
        assert f"backbone.blocks.{depth - 1}.mlp.fc2.weight" in t and f"backbone.blocks.{depth}.norm1.weight" not in t


def test_vitpose_plus_checkpoint_is_converted_like_model_split(tmp_path):
    """ViTPose++ files (fc2 split into shared + experts, extra heads) become the classic COCO state dict."""
    shapes = {k: v.shape for k, v in ViTPoseNet(TINY, device=torch.device("meta")).state_dict().items()}
    expected = write_vitpose_checkpoint(tmp_path / "plus.pth", shapes, seed=3, plus=True, part_features=8)
    saved = read_checkpoint(tmp_path / "plus.pth", "vitpose-s", "hint")["state_dict"]
    assert any(".mlp.experts.5." in k for k in saved) and "associate_keypoint_heads.0.final_layer.weight" in saved
    converted = to_model_state(saved)
    assert set(converted) == set(expected)
    for k, v in expected.items():
        assert torch.equal(converted[k], v), k


def test_random_state_helper_covers_every_key():
    shapes = {k: v.shape for k, v in ViTPoseNet(TINY, device=torch.device("meta")).state_dict().items()}
    state = random_state(shapes)
    net = ViTPoseNet(TINY)
    net.load_state_dict(state, strict=True)
