"""HMR2 = ViT-H backbone on the crop's central 256x192 + the SMPL transformer-decoder head, official names
(``backbone.*``, ``smpl_head.*`` as in the Lightning checkpoint's state_dict)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..vitpose.vit import ViT
from .config import HMR2Config
from .head import SMPLHead


class HMR2Net(nn.Module):
    def __init__(self, cfg: HMR2Config, device=None):
        super().__init__()
        self.backbone = ViT(cfg.backbone, device=device)
        self.smpl_head = SMPLHead(cfg.head, cfg.backbone.embed_dim, device=device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, 256, 256) normalised RGB -> rotmats (B, 24, 3, 3), betas (B, 10), crop camera (B, 3)."""
        return self.smpl_head(self.backbone(x[:, :, :, 32:-32]))
