"""The official ViTPose checkpoint's tensors -> the state dict of ``ViTPoseNet``.

Accepted files (both mmpose containers ``{'state_dict': ..., 'meta': ...}``, read with weights_only):

- The classic COCO checkpoints (README "ViTPose-S/B/L/H, MAE, 256x192, classic decoder"): keys
  ``backbone.*`` and ``keypoint_head.*`` as they are. ``backbone.cls_token`` (some releases) and
  ``associate_heads.*`` / ``associate_keypoint_heads.*`` (multi-dataset heads) are not used and dropped.
- ViTPose++ (``vitpose+_{small,base,large,huge}.pth``): the MLP's ``fc2`` is split into a shared part and
  per-dataset ``experts``; for COCO the official ``tools/model_split.py`` concatenates ``fc2`` with expert 0
  along the output dimension, which is what ``merge_coco_expert`` does in memory. ``keypoint_head`` is the
  COCO head.
"""

from __future__ import annotations

import re

import torch

DROPPED = re.compile(r"^(backbone\.cls_token$|associate_heads\.|associate_keypoint_heads\.)")
EXPERT = re.compile(r"^(backbone\.blocks\.\d+\.mlp)\.experts\.(\d+)\.(weight|bias)$")


def merge_coco_expert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ViTPose++ -> plain ViTPose for COCO (dataset/expert 0), as tools/model_split.py; other dicts unchanged."""
    experts = {k: m for k in state if (m := EXPERT.match(k))}
    if not experts:
        return dict(state)
    out = {k: v for k, v in state.items() if k not in experts}
    for key, found in experts.items():
        prefix, index, kind = found.groups()
        value = state[key]
        if index == "0":
            fc2 = f"{prefix}.fc2.{kind}"
            out[fc2] = torch.cat([out[fc2], value], dim=0)
    return out


def to_model_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint state dict -> ViTPoseNet state dict (unknown keys stay, for the strict load to report)."""
    return {k: v for k, v in merge_coco_expert(state).items() if not DROPPED.match(k)}
