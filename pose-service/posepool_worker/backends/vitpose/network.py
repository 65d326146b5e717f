"""ViTPose = ViT backbone + the classic heatmap head (TopdownHeatmapSimpleHead), official names.

State dict keys: ``backbone.*`` (vit.py) and ``keypoint_head.deconv_layers.{0,1,3,4}.*`` (two
ConvTranspose2d 4x4 stride 2 padding 1 without bias, each followed by BatchNorm2d and ReLU) and
``keypoint_head.final_layer.*`` (1x1 conv to 17 heatmaps).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import ViTPoseConfig
from .vit import ViT


class HeatmapHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_keypoints: int, device=None):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(2):
            layers += [
                nn.ConvTranspose2d(
                    in_channels if i == 0 else channels,
                    channels,
                    kernel_size=4,
                    stride=2,
                    padding=1,
                    output_padding=0,
                    bias=False,
                    device=device,
                ),
                nn.BatchNorm2d(channels, device=device),
                nn.ReLU(inplace=True),
            ]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(channels, num_keypoints, kernel_size=1, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class ViTPoseNet(nn.Module):
    def __init__(self, cfg: ViTPoseConfig, device=None):
        super().__init__()
        self.backbone = ViT(cfg.backbone, device=device)
        self.keypoint_head = HeatmapHead(cfg.backbone.embed_dim, cfg.deconv_channels, cfg.num_keypoints, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 192) normalised RGB -> (B, 17, 64, 48) heatmaps."""
        return self.keypoint_head(self.backbone(x))
