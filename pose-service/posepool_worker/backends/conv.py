"""The conv both TF.js-translated backends build on (MoveNet's SameConv2d, BlazePose's TFConv2d)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("", "relu", "relu6")


class Conv2dAct(nn.Module):
    """A dense or depthwise conv with explicit symmetric padding, bias and an optional fused ReLU / ReLU6."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: int,
        padding: tuple[int, int],
        groups: int,
        act: str,
    ):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unsupported activation {act!r}")
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
        self.bias = nn.Parameter(bias.contiguous(), requires_grad=False) if bias is not None else None
        self.stride = (stride, stride)
        self.padding = padding
        self.groups = groups
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        if self.act == "relu6":
            x = F.hardtanh(x, 0.0, 6.0)
        elif self.act == "relu":
            x = F.relu(x)
        return x
