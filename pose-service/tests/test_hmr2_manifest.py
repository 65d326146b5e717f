"""HMR2: our module's state_dict == the committed manifest derived from 4D-Humans' own code (meta device)."""

import json
from pathlib import Path

import torch

from posepool_worker.backends.hmr2.backend import IGNORED
from posepool_worker.backends.hmr2.config import HMR2
from posepool_worker.backends.hmr2.network import HMR2Net

MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "hmr2.json"


def test_state_dict_matches_the_official_manifest():
    doc = json.loads(MANIFEST.read_text(encoding="utf-8"))
    state = HMR2Net(HMR2, device=torch.device("meta")).state_dict()
    assert all(t.device.type == "meta" for t in state.values())
    ours = {k: list(v.shape) for k, v in state.items()}
    assert sorted(set(ours) ^ set(doc["tensors"])) == []
    assert ours == doc["tensors"]
    dec = doc["transformerDecoder"]
    h = HMR2.head
    assert (dec["depth"], dec["heads"], dec["dim_head"], dec["mlp_dim"], dec["context_dim"]) == (
        h.depth,
        h.heads,
        h.dim_head,
        h.mlp_dim,
        HMR2.backbone.embed_dim,
    )
    assert doc["derivedFrom"]["repository"] == "shubham-goel/4D-Humans" and len(doc["derivedFrom"]["commit"]) == 40


def test_manifest_facts_independent_of_our_code():
    t = json.loads(MANIFEST.read_text(encoding="utf-8"))["tensors"]
    assert t["backbone.pos_embed"] == [1, 193, 1280]  # ViT-H on 256x192
    assert t["smpl_head.decpose.weight"] == [144, 1024]  # 24 joints x 6D
    assert t["smpl_head.init_body_pose"] == [1, 144] and t["smpl_head.init_betas"] == [1, 10]
    assert t["smpl_head.transformer.transformer.layers.0.1.fn.to_kv.weight"] == [1024, 1280]  # cross-attn to ViT-H
    assert not any(k.startswith(("discriminator.", "smpl.")) for k in t)


def test_lightning_only_state_is_ignored():
    for key in ("discriminator.D_conv1.weight", "smpl.shapedirs", "smpl.J_regressor", "initialized"):
        assert IGNORED.match(key)
    for key in ("smpl_head.init_cam", "backbone.pos_embed", "smpl_head.transformer.pos_embedding"):
        assert not IGNORED.match(key)
