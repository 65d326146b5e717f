"""MoveNet's CenterNet-style decoding, as in the graph, generalised to a batch.

Per sample (the graph does this with batch 1):
  1. center = sigmoid(center_logits) * center_weight (a fixed map favouring the image centre);
     the person centre (cy, cx) is the first argmax over the grid.
  2. regressed keypoints = (cy, cx) + regress[cy, cx] (17 x (dy, dx), grid units).
  3. for each keypoint k: heatmap_k / (distance to its regressed position + 1.8); the first argmax
     gives its cell (ky, kx).
  4. y, x = ((ky, kx) + offset_k[ky, kx]) * (1/48 or 1/64, the float16 constant of the graph);
     score = heatmap_k[ky, kx].
The arithmetic follows the graph op by op (float32), so results agree with TF.js to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .tfjs_graph import GraphModel, ModelFileError

SPC = "StatefulPartitionedCall/"


@dataclass(frozen=True)
class DecodeConstants:
    grid: int  # heatmap side (48 for Lightning, 64 for Thunder)
    distance_bias: float  # 1.8 (as float16) added to the keypoint-to-regression distance
    scale_y: float  # 1/grid as stored in the graph (float16)
    scale_x: float
    center_weight: np.ndarray  # [grid, grid] float32

    @classmethod
    def from_graph(cls, graph: GraphModel) -> DecodeConstants:
        w = graph.weight
        cw = np.asarray(w("ConstantFolding/" + SPC + "truediv_2_recip"), np.float32)
        grid = cw.shape[0]
        gy, gx = w(SPC + "strided_slice_3"), w(SPC + "strided_slice_4")
        expect_y = np.repeat(np.arange(grid, dtype=np.float32), grid).reshape(grid, grid, 1)
        if (
            cw.shape != (grid, grid, 1)
            or not np.array_equal(gy, expect_y)
            or not np.array_equal(gx, expect_y.transpose(1, 0, 2))
        ):
            raise ModelFileError(graph.json_path, "decoder constants are not the expected coordinate grids")
        floordiv = int(w(SPC + "floordiv/y"))
        if floordiv != grid:
            raise ModelFileError(graph.json_path, f"decoder grid {floordiv} != center map {grid}")
        scale = np.asarray(w(SPC + "Reshape_13"), np.float32).ravel()
        return cls(grid, float(np.float32(w(SPC + "add_5/y"))), float(scale[0]), float(scale[1]), cw[:, :, 0])

    def center_weight_nchw(self) -> torch.Tensor:
        return torch.from_numpy(self.center_weight.copy()).reshape(1, 1, self.grid, self.grid)


CellReader = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(batch index [N], y [N], x [N]) -> a head's 34 channels at those cells, [N, 34]."""


def read_cells(head_map: torch.Tensor) -> CellReader:
    """A CellReader over a whole-grid head map [B, 34, G, G]."""
    return lambda b, y, x: head_map[b, :, y, x]


def decode_heads(
    heatmap_logits: torch.Tensor,
    center_logits: torch.Tensor,
    regress_at: CellReader,
    offset_at: CellReader,
    center_weight: torch.Tensor,
    c: DecodeConstants,
) -> torch.Tensor:
    """Heatmap logits [B,17,G,G] and centre logits [B,1,G,G] (NCHW), and readers of the regression and offset
    heads at given cells -> [B, 17, 3] (y, x, score), 0..1."""
    b, k, g, _ = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    center = torch.sigmoid(center_logits) * center_weight
    batch = torch.arange(b, device=heat.device)

    idx = center.reshape(b, g * g).argmax(dim=1)  # first maximum, as TF's ArgMax
    cy = torch.div(idx, g, rounding_mode="floor")
    cx = idx - cy * g
    reg = regress_at(batch, cy, cx).reshape(b, k, 2)  # [B, 17, (dy, dx)]
    ky_reg = cy.to(torch.float32)[:, None] + reg[:, :, 0]
    kx_reg = cx.to(torch.float32)[:, None] + reg[:, :, 1]

    coords = torch.arange(g, dtype=torch.float32, device=heat.device)
    dy = (coords.view(1, 1, g, 1) - ky_reg.view(b, k, 1, 1)) ** 2
    dx = (coords.view(1, 1, 1, g) - kx_reg.view(b, k, 1, 1)) ** 2
    dist = torch.sqrt(dy + dx) + c.distance_bias
    weighted = heat / dist

    kidx = weighted.reshape(b, k, g * g).argmax(dim=2)  # [B, 17]
    ky = torch.div(kidx, g, rounding_mode="floor")
    kx = kidx - ky * g
    kp = torch.arange(k, device=heat.device)
    bb = batch[:, None].expand(b, k)
    off = offset_at(bb.reshape(-1), ky.reshape(-1), kx.reshape(-1)).reshape(b, k, k, 2)  # at keypoint j's cell
    off = off[:, kp, kp]  # [B, 17, 2]: keypoint k's own offset at its own cell
    off_y, off_x = off[:, :, 0], off[:, :, 1]
    score = heat[bb, kp[None, :].expand(b, k), ky, kx]
    y = (ky.to(torch.float32) + off_y) * c.scale_y
    x = (kx.to(torch.float32) + off_x) * c.scale_x
    return torch.stack([y, x, score], dim=2)
