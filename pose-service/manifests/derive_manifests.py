"""Derive the committed key/shape manifests from the OFFICIAL source code (not from posepool's modules).

The manifests in this folder list every tensor (name -> shape) that our modules must accept from the
official checkpoints. They are produced by instantiating the official classes themselves:

- ViTPose-S/B/L/H: ``mmpose/models/backbones/vit.py`` (class ViT) and
  ``mmpose/models/heads/topdown_heatmap_simple_head.py`` (TopdownHeatmapSimpleHead) from
  ViTAE-Transformer/ViTPose, with the ``model`` dict of
  ``configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_{small,base,large,huge}_coco_256x192.py``.
  The TopDown detector names its parts ``backbone`` and ``keypoint_head``.
- HMR 2.0: ``hmr2/models/backbones/vit.py`` (vit(cfg)) and ``hmr2/models/heads/smpl_head.py``
  (SMPLTransformerDecoderHead, with ``components/pose_transformer.py``) from shubham-goel/4D-Humans, with the
  MODEL/SMPL values of ``hmr2/configs_hydra/experiment/{hmr_vit_transformer,default}.yaml``. The
  LightningModule names them ``backbone`` and ``smpl_head``.

Their framework imports (timm, mmcv, mmpose registries, einops) are replaced by small stand-ins that
only construct layers (the stand-ins are listed below); the architecture code runs as published.
Weights are allocated but not initialised (init functions are no-ops), so ViT-H builds in seconds.

Usage (needs git clones of both repositories; run once, commit the JSON files):
    /usr/bin/python3 manifests/derive_manifests.py --vitpose-git PATH --hmr2-git PATH [--out manifests]
PATH may be a bare mirror: files are read with ``git show COMMIT:path``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch.nn as nn

VITPOSE_CONFIGS = {
    "vitpose-s": "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_small_coco_256x192.py",
    "vitpose-b": "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_base_coco_256x192.py",
    "vitpose-l": "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_large_coco_256x192.py",
    "vitpose-h": "configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_huge_coco_256x192.py",
}


def git_show(repo: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def git_head(repo: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _noop(tensor, *args, **kwargs):
    return tensor


def no_init():
    """Make parameter initialisation free: the manifest needs shapes, not values."""
    for name in (
        "kaiming_uniform_",
        "uniform_",
        "normal_",
        "trunc_normal_",
        "constant_",
        "xavier_uniform_",
        "zeros_",
        "ones_",
    ):
        setattr(nn.init, name, _noop)


def strip_lines(src: str, starts: tuple[str, ...]) -> str:
    out = []
    skipping = False
    for line in src.splitlines():
        if skipping:
            skipping = not line.rstrip().endswith(")")
            continue
        if line.startswith(starts):
            skipping = "(" in line and not line.rstrip().endswith(")")
            continue
        out.append(line)
    return "\n".join(out)


class _Registry:
    def register_module(self, *a, **k):
        return lambda cls: cls


def official_vitpose_model(repo: str, commit: str, config_path: str) -> dict[str, list[int]]:
    # Stand-ins for timm.models.layers and the mmpose registries.
    ns_vit = {
        "__name__": "official_vit",
        "BACKBONES": _Registry(),
        "BaseBackbone": nn.Module,
        "drop_path": lambda x, p, training: x,
        "to_2tuple": lambda v: v if isinstance(v, tuple) else (v, v),
        "trunc_normal_": _noop,
    }
    src = strip_lines(
        git_show(repo, commit, "mmpose/models/backbones/vit.py"), ("from timm", "from ..builder", "from .base_backbone")
    )
    exec(compile(src, "ViTPose:vit.py", "exec"), ns_vit)

    # Stand-ins for mmcv.cnn builders (they construct the plain torch layers named by the config type).
    def build_conv_layer(cfg, *args, **kwargs):
        return nn.Conv2d(*args, **kwargs)

    def build_upsample_layer(cfg, *args, **kwargs):
        assert cfg["type"] == "deconv"
        return nn.ConvTranspose2d(*args, **kwargs)

    def build_norm_layer(cfg, channels):
        return "bn", nn.BatchNorm2d(channels)

    base_src = git_show(repo, commit, "mmpose/models/heads/topdown_heatmap_base_head.py")
    ns_base = {"__name__": "official_base_head"}
    exec(compile(strip_lines(base_src, ("from mmpose", "from ..", "from .")), "base_head.py", "exec"), ns_base)
    ns_head = {
        "__name__": "official_head",
        "build_conv_layer": build_conv_layer,
        "build_norm_layer": build_norm_layer,
        "build_upsample_layer": build_upsample_layer,
        "constant_init": _noop,
        "normal_init": _noop,
        "pose_pck_accuracy": None,
        "flip_back": None,
        "build_loss": lambda cfg: None,
        "resize": None,
        "HEADS": _Registry(),
        "TopdownHeatmapBaseHead": ns_base["TopdownHeatmapBaseHead"],
    }
    src = strip_lines(
        git_show(repo, commit, "mmpose/models/heads/topdown_heatmap_simple_head.py"),
        ("from mmcv", "from mmpose", "from ..builder", "from .topdown"),
    )
    exec(compile(src, "ViTPose:topdown_heatmap_simple_head.py", "exec"), ns_head)

    cfg_src = git_show(repo, commit, config_path).replace("{{_base_.dataset_info}}", "None")
    cfg_ns: dict = {}
    exec(compile(cfg_src, config_path, "exec"), cfg_ns)
    model_cfg = cfg_ns["model"]
    backbone_args = {k: v for k, v in model_cfg["backbone"].items() if k != "type"}
    head_args = {k: v for k, v in model_cfg["keypoint_head"].items() if k != "type"}
    assert model_cfg["backbone"]["type"] == "ViT" and model_cfg["keypoint_head"]["type"] == "TopdownHeatmapSimpleHead"

    detector = nn.Module()
    detector.backbone = ns_vit["ViT"](**backbone_args)
    detector.keypoint_head = ns_head["TopdownHeatmapSimpleHead"](**head_args)
    return {k: list(v.shape) for k, v in detector.state_dict().items()}, model_cfg


def official_hmr2_model(repo: str, commit: str) -> dict[str, list[int]]:
    import yaml  # first, to fail early with a clear message if it is absent

    # Stand-in for the einops names the head modules import (used only in forward, not in __init__).
    einops = types.ModuleType("einops")
    einops.rearrange = None
    layers = types.ModuleType("einops.layers")
    layers_torch = types.ModuleType("einops.layers.torch")
    layers_torch.Rearrange = None
    sys.modules.update({"einops": einops, "einops.layers": layers, "einops.layers.torch": layers_torch})

    ns_vit = {
        "__name__": "hmr2_vit",
        "drop_path": lambda x, p, training: x,
        "to_2tuple": lambda v: v if isinstance(v, tuple) else (v, v),
        "trunc_normal_": _noop,
    }
    src = strip_lines(git_show(repo, commit, "hmr2/models/backbones/vit.py"), ("from timm",))
    exec(compile(src, "4D-Humans:vit.py", "exec"), ns_vit)

    ns_tcond = {"__name__": "t_cond_mlp"}
    exec(compile(git_show(repo, commit, "hmr2/models/components/t_cond_mlp.py"), "t_cond_mlp.py", "exec"), ns_tcond)
    ns_pt = {
        "__name__": "pose_transformer",
        **{k: ns_tcond[k] for k in ("AdaptiveLayerNorm1D", "FrequencyEmbedder", "normalization_layer")},
    }
    src = strip_lines(git_show(repo, commit, "hmr2/models/components/pose_transformer.py"), ("from .t_cond_mlp",))
    exec(compile(src, "pose_transformer.py", "exec"), ns_pt)
    ns_geo = {"__name__": "geometry"}
    exec(compile(git_show(repo, commit, "hmr2/utils/geometry.py"), "geometry.py", "exec"), ns_geo)
    ns_head = {
        "__name__": "smpl_head",
        "rot6d_to_rotmat": ns_geo["rot6d_to_rotmat"],
        "aa_to_rotmat": ns_geo["aa_to_rotmat"],
        "TransformerDecoder": ns_pt["TransformerDecoder"],
    }
    src = strip_lines(
        git_show(repo, commit, "hmr2/models/heads/smpl_head.py"),
        ("from ...utils.geometry", "from ..components.pose_transformer"),
    )
    exec(compile(src, "smpl_head.py", "exec"), ns_head)

    exp = yaml.safe_load(git_show(repo, commit, "hmr2/configs_hydra/experiment/hmr_vit_transformer.yaml"))
    base = yaml.safe_load(git_show(repo, commit, "hmr2/configs_hydra/experiment/default.yaml"))

    class Cfg(dict):
        """Attribute access like yacs CfgNode (the official code reads cfg.MODEL.SMPL_HEAD.get(...))."""

        def __getattr__(self, k):
            v = self[k]
            return Cfg(v) if isinstance(v, dict) else v

    with tempfile.TemporaryDirectory() as tmp:
        # smpl_mean_params.npz only fills buffer values; shapes follow SPIN's file (24 joints x 6D, 10, 3).
        mean_path = Path(tmp) / "smpl_mean_params.npz"
        np.savez(mean_path, pose=np.zeros(144, np.float32), shape=np.zeros(10, np.float32), cam=np.zeros(3, np.float32))
        smpl = dict(base["SMPL"])
        smpl["MEAN_PARAMS"] = str(mean_path)
        cfg = Cfg({"MODEL": exp["MODEL"], "SMPL": smpl})
        module = nn.Module()
        module.backbone = ns_vit["vit"](cfg)
        module.smpl_head = ns_head["SMPLTransformerDecoderHead"](cfg)
    return {k: list(v.shape) for k, v in module.state_dict().items()}, {"MODEL": exp["MODEL"]}


def write(path: Path, doc: dict) -> None:
    text = json.dumps(doc, indent=1)
    text = re.sub(
        r"\[\s+([-\d,\s]+?)\s+\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text
    )
    path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(doc['tensors'])} tensors)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vitpose-git", required=True)
    ap.add_argument("--hmr2-git", required=True)
    ap.add_argument("--out", default=str(Path(__file__).parent))
    args = ap.parse_args()
    no_init()
    out = Path(args.out)
    commit = git_head(args.vitpose_git)
    for name, cfg_path in VITPOSE_CONFIGS.items():
        tensors, model_cfg = official_vitpose_model(args.vitpose_git, commit, cfg_path)
        write(
            out / f"{name}.json",
            {
                "model": name,
                "container": "mmpose checkpoint: {'state_dict': {...}, 'meta': {...}}",
                "derivedFrom": {
                    "repository": "ViTAE-Transformer/ViTPose",
                    "commit": commit,
                    "files": [
                        "mmpose/models/backbones/vit.py",
                        "mmpose/models/heads/topdown_heatmap_simple_head.py",
                        cfg_path,
                    ],
                },
                "backbone": {
                    k: v
                    for k, v in model_cfg["backbone"].items()
                    if k
                    in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "ratio", "mlp_ratio", "qkv_bias")
                },
                "tensors": tensors,
            },
        )
    commit = git_head(args.hmr2_git)
    tensors, cfg = official_hmr2_model(args.hmr2_git, commit)
    write(
        out / "hmr2.json",
        {
            "model": "hmr2",
            "container": "PyTorch Lightning checkpoint: {'state_dict': {...}, 'pytorch-lightning_version', "
            "'hyper_parameters': {'cfg': yacs CfgNode}, ...}",
            "derivedFrom": {
                "repository": "shubham-goel/4D-Humans",
                "commit": commit,
                "files": [
                    "hmr2/models/backbones/vit.py",
                    "hmr2/models/heads/smpl_head.py",
                    "hmr2/models/components/pose_transformer.py",
                    "hmr2/configs_hydra/experiment/hmr_vit_transformer.yaml",
                ],
            },
            "transformerDecoder": cfg["MODEL"]["SMPL_HEAD"]["TRANSFORMER_DECODER"],
            "notInManifest": "the LightningModule's other state (discriminator.*, smpl.* SMPL buffers, initialized) "
            "is training-only or licensed data and is ignored by posepool's loader",
            "tensors": tensors,
        },
    )


if __name__ == "__main__":
    main()
