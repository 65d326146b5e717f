"""MoveNet (single-pose Lightning / Thunder) as a PyTorch module built from the TF.js graph's weights.

The architecture is read off the graph (tfjs_graph.py): a MobileNetV2 backbone, a 3-level FPN and four
CenterNet heads, decoded as the graph decodes them (decode.py). Channel widths come from the weights, so
Lightning and Thunder share this code. On CPU the trunk runs as a frozen oneDNN graph (MoveNet.optimize_for_cpu).
"""

from __future__ import annotations

import copy
import logging
import re
import warnings
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
import torch.backends.mkldnn
import torch.nn.functional as F
from torch import nn

from ..conv import Conv2dAct
from .decode import DecodeConstants, decode_heads
from .tfjs_graph import GraphModel, ModelFileError

FE = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
SPC = "StatefulPartitionedCall/"
HEADS = ("kpt_heatmap_0", "center_0", "kpt_regress_0", "kpt_offset_0")
# oneDNN's fp32 channel block on AVX-512 (AVX2's 8 divides it). torch 1.13's frozen-graph ReLU6
# (prim::MKLDNNHardTanh_, in place on the blocked tensor) is wrong on AVX-512 where a width is not a multiple of
# the block, e.g. Thunder's 56 and 168 (off by up to 45); so every ReLU6 width is padded to one.
ONEDNN_CHANNEL_BLOCK = 16
OPTIMIZED_TRUNK_TOLERANCE = 0.01  # on logits: oneDNN's rounding differs from eager by ~3e-4, that ReLU6 error by >= 8

log = logging.getLogger(__name__)

# torch 1.13's torch.jit lists no public names for type checkers (no __all__), so pyright takes them for private.
ScriptModule = torch.jit.ScriptModule  # pyright: ignore[reportPrivateImportUsage]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) for one spatial axis."""
    out = -(-size // stride)
    pad = max(0, (out - 1) * stride + kernel - size)
    return pad // 2, pad - pad // 2


class SameConv2d(Conv2dAct):
    """A conv (dense or depthwise) with TF SAME padding, bias and an optional fused ReLU / ReLU6.

    Built for a fixed input size. Symmetric SAME padding is passed to the conv itself; TF's asymmetric stride-2
    padding (before, after) = (p, p + 1) by growing the kernel by one zero row/col at the front, so no padded
    copy of the input is ever made (an F.pad copy is about 2x slower on the 128x128 layer).
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, groups: int, act: str, in_size: int
    ):
        k = weight.shape[-1]
        before, after = same_padding(in_size, k, stride)
        if after == before + 1:
            weight = F.pad(weight, (1, 0, 1, 0))  # zero first row/col: a (k+1)x(k+1) kernel
            before = after
        elif after != before:
            raise ValueError(f"unsupported SAME padding {before}/{after}")
        super().__init__(weight, bias, stride, (before, before), groups, act)
        self.out_size = -(-in_size // stride)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1

    def pad_channels(self, out_to: int | None = None, in_to: int | None = None) -> None:
        """Widen with zero filters (outputs that are exactly 0, and stay 0 through ReLU / ReLU6) and zero input
        columns (inputs that are ignored): the same arithmetic on the real channels."""
        w, b = self.weight.data, self.bias.data if self.bias is not None else None
        if out_to is not None and out_to > w.shape[0]:
            extra = out_to - w.shape[0]
            w = F.pad(w, (0, 0, 0, 0, 0, 0, 0, extra))
            b = F.pad(b, (0, extra)) if b is not None else None
            if self.depthwise:
                self.groups = out_to
        if in_to is not None and not self.depthwise and in_to > w.shape[1]:
            w = F.pad(w, (0, 0, 0, 0, 0, in_to - w.shape[1]))
        self.weight = nn.Parameter(w.contiguous(), requires_grad=False)
        if b is not None:
            self.bias = nn.Parameter(b.contiguous(), requires_grad=False)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _dense_weight(w: np.ndarray) -> torch.Tensor:  # [kh, kw, in, out] -> [out, in, kh, kw]
    return _t(w).permute(3, 2, 0, 1).contiguous()


def _depthwise_weight(w: np.ndarray) -> torch.Tensor:  # [kh, kw, C, 1] -> [C, 1, kh, kw]
    return _t(w).permute(2, 3, 0, 1).contiguous()


def _activation(graph: GraphModel, node_name: str) -> str:
    fused = graph.node(node_name).attr_strs("fused_ops")
    if not fused or fused[0] != "BiasAdd" or len(fused) > 2 or (len(fused) == 2 and fused[1] not in ("Relu", "Relu6")):
        raise ModelFileError(graph.json_path, f"{node_name}: unsupported fused ops {fused}")
    return {"Relu": "relu", "Relu6": "relu6"}[fused[1]] if len(fused) == 2 else ""


def _stride(graph: GraphModel, node_name: str) -> int:
    s = graph.node(node_name).attr_ints("strides")
    return s[1] if s else 1


def _widen(chain: Sequence[SameConv2d], multiple: int) -> None:
    """chain = producer (dense), the depthwise convs it feeds, the consumer (dense): widen the channels that
    flow between them to a multiple of `multiple`."""
    width = chain[0].weight.shape[0]
    padded = -(-width // multiple) * multiple
    if padded == width:
        return
    for conv in chain[:-1]:
        conv.pad_channels(out_to=padded)
    chain[-1].pad_channels(in_to=padded)


class InvertedResidual(nn.Module):
    def __init__(self, expand: SameConv2d | None, depthwise: SameConv2d, project: SameConv2d, residual: bool):
        super().__init__()
        self.expand: nn.Module = expand if expand is not None else nn.Identity()
        self.depthwise = depthwise
        self.project = project
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        if self.residual:
            return x + y
        return y


class SeparableBlock(nn.Module):
    """Depthwise 3x3 (no bias) then 1x1 with bias and ReLU: the FPN's and the heads' separable convs."""

    def __init__(self, depthwise: SameConv2d, pointwise: SameConv2d):
        super().__init__()
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class FPNLevel(nn.Module):
    """Upsample x2 (bilinear, half-pixel centres = TF's ResizeBilinear), add the lateral 1x1 of a backbone
    output, then the separable 3x3 + ReLU."""

    def __init__(self, size: int, lateral: SameConv2d, smooth: SeparableBlock):
        super().__init__()
        self.size = size
        self.lateral = lateral
        self.smooth = smooth

    def forward(self, p: torch.Tensor, backbone: torch.Tensor) -> torch.Tensor:
        p = F.interpolate(p, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.smooth(p + self.lateral(backbone))


class PointHead(nn.Module):
    """A head (depthwise 3x3 SAME, 1x1 + ReLU, 1x1) evaluated at chosen grid cells only: the same arithmetic as
    running it over the grid and reading those cells, for a fraction of the work."""

    def __init__(self, head: nn.Sequential):
        super().__init__()
        block, final = cast(SeparableBlock, head[0]), cast(SameConv2d, head[1])
        if block.pointwise.bias is None or final.bias is None:
            raise ValueError("a point head's 1x1 convs need their biases")
        dw = block.depthwise.weight[:, 0].permute(1, 2, 0)  # [3, 3, C]
        self.dw = nn.Parameter(dw.contiguous(), requires_grad=False)
        self.w1 = nn.Parameter(block.pointwise.weight[:, :, 0, 0].t().contiguous(), requires_grad=False)  # [C, H]
        self.b1 = nn.Parameter(block.pointwise.bias.clone(), requires_grad=False)
        self.w2 = nn.Parameter(final.weight[:, :, 0, 0].t().contiguous(), requires_grad=False)  # [H, O]
        self.b2 = nn.Parameter(final.bias.clone(), requires_grad=False)
        self.dense = head  # the whole-grid form, for tests

    def at(self, features: torch.Tensor, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """features [B, C, G, G]; b, y, x: [N] indices -> the head's output at those cells, [N, O]."""
        padded = F.pad(features, (1, 1, 1, 1))  # the depthwise conv's SAME zero padding
        k = torch.arange(3, device=features.device)
        patch = padded[b[:, None, None], :, (y[:, None] + k)[:, :, None], (x[:, None] + k)[:, None, :]]  # [N,3,3,C]
        hidden = torch.relu((patch * self.dw).sum(dim=(1, 2)) @ self.w1 + self.b1)
        return hidden @ self.w2 + self.b2

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(features)


class MoveNetTrunk(nn.Module):
    """Normalized NCHW input [B, 3, S, S] -> heatmap and centre logits and the FPN features: MobileNetV2, FPN,
    and the two heads the decoder reads everywhere. (The regression and offset heads are PointHeads.)"""

    def __init__(self, graph: GraphModel, size: int):
        super().__init__()
        w = graph.weight

        def conv(prefix: str, node: str, kind: str, in_size: int) -> SameConv2d:
            """A backbone conv with its BN folded into '<prefix>_weights' / '<prefix>_bn_offset'."""
            if kind == "dense":
                wt, b = _dense_weight(w(prefix + "_weights")), _t(w(prefix + "_bn_offset"))
                return SameConv2d(wt, b, _stride(graph, node), 1, _activation(graph, node), in_size)
            if kind == "depthwise":
                wt, b = _depthwise_weight(w(prefix + "_weights")), _t(w(prefix + "_bn_offset"))
                return SameConv2d(wt, b, _stride(graph, node), wt.shape[0], _activation(graph, node), in_size)
            raise ValueError(kind)

        m = FE + "model/"
        # Stem
        self.stem = conv(m + "Conv1/Conv2D", m + "Conv1_relu/Relu6", "dense", size)
        cur = self.stem.out_size
        blocks: list[nn.Module] = [
            InvertedResidual(
                None,
                conv(
                    m + "expanded_conv_depthwise/depthwise", m + "expanded_conv_depthwise/depthwise", "depthwise", cur
                ),
                conv(m + "expanded_conv_project/Conv2D", m + "expanded_conv_project_BN/FusedBatchNormV3", "dense", cur),
                False,
            )
        ]
        ids = sorted(
            int(mm.group(1))
            for n in graph.nodes
            if (mm := re.fullmatch(re.escape(m) + r"block_(\d+)_expand/Conv2D_weights", n))
        )
        taps = {}
        for i in ids:
            b = f"{m}block_{i}_"
            expand = conv(b + "expand/Conv2D", b + "expand_relu/Relu6", "dense", cur)
            dw = conv(b + "depthwise/depthwise", b + "depthwise/depthwise", "depthwise", cur)
            cur = dw.out_size
            project = conv(b + "project/Conv2D", b + "project_BN/FusedBatchNormV3", "dense", cur)
            residual = (b + "add/add") in graph.nodes
            blocks.append(InvertedResidual(expand, dw, project, residual))
            taps[i] = len(blocks) - 1
        self.head_conv = conv(m + "Conv_1/Conv2D", m + "out_relu/Relu6", "dense", cur)

        # FPN: which backbone outputs feed the laterals, read from the graph (block_N_add -> conv2d_k).
        def lateral(name: str, in_size: int) -> tuple[int, SameConv2d]:
            node = graph.node(FE + name + "/BiasAdd")
            src = node.inputs[0].split(":")[0]
            mm = re.fullmatch(re.escape(m) + r"block_(\d+)_add/add", src)
            if not mm:
                raise ModelFileError(graph.json_path, f"unexpected FPN lateral input {src}")
            wt = _dense_weight(w(FE + name + "/Conv2D/ReadVariableOp"))
            b = _t(w(FE + name + "/BiasAdd/ReadVariableOp"))
            return taps[int(mm.group(1))], SameConv2d(wt, b, 1, 1, "", in_size)

        def separable(dw_name: str, pw_weights: str, pw_bias: str, pw_node: str, in_size: int) -> SeparableBlock:
            dwt = _depthwise_weight(w(dw_name))
            dw = SameConv2d(dwt, None, 1, dwt.shape[0], "", in_size)
            pw = SameConv2d(_dense_weight(w(pw_weights)), _t(w(pw_bias)), 1, 1, _activation(graph, pw_node), in_size)
            return SeparableBlock(dw, pw)

        top = SameConv2d(
            _dense_weight(w(FE + "conv2d/Conv2D/ReadVariableOp")),
            _t(w(FE + "conv2d/BiasAdd/ReadVariableOp")),
            1,
            1,
            "",
            cur,
        )
        self.fpn_top = top
        levels = []
        for level, (lat_name, sep_name, relu_name) in enumerate(
            [
                ("conv2d_1", "separable_conv2d", "re_lu"),
                ("conv2d_2", "separable_conv2d_1", "re_lu_1"),
                ("conv2d_3", "separable_conv2d_2", "re_lu_2"),
            ]
        ):
            up = w(FE + ("up_sampling2d" if level == 0 else f"up_sampling2d_{level}") + "/mul")
            cur = int(up[0])
            tap, lat = lateral(lat_name, cur)
            smooth = separable(
                FE + sep_name + "/separable_conv2d/ReadVariableOp",
                FE + sep_name + "/separable_conv2d_weights",
                FE + sep_name + "/separable_conv2d_bn_offset",
                FE + relu_name + "/Relu",
                cur,
            )
            levels.append((tap, FPNLevel(cur, lat, smooth)))
        # The FPN taps stride 16, 8, 4 (in that order); cut the blocks into stages ending at those taps so
        # forward() passes tensors, not a list (a list would force oneDNN tensors back to dense).
        tap_ends = [tap for tap, _ in levels]
        if tap_ends != sorted(tap_ends, reverse=True):
            raise ModelFileError(graph.json_path, f"unexpected FPN taps {tap_ends}")
        bounds = [0] + [t + 1 for t in reversed(tap_ends)] + [len(blocks)]
        self.stage4, self.stage8, self.stage16, self.stage32 = (
            nn.Sequential(*blocks[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
        )
        self.fpn16, self.fpn8, self.fpn4 = (level for _, level in levels)

        heads = []
        for h in HEADS:
            p = SPC + h + "/"
            sep = [n for n in graph.nodes if n.startswith(p + "separable_conv2d_") and n.endswith("/depthwise")][0]
            sep_prefix = sep[: -len("/separable_conv2d/depthwise")]
            conv_w = [n for n in graph.nodes if re.fullmatch(re.escape(p) + r"conv2d_\d+/Conv2D/ReadVariableOp", n)][0]
            conv_prefix = conv_w[: -len("/Conv2D/ReadVariableOp")]
            relu = [n for n in graph.nodes if re.fullmatch(re.escape(p) + r"re_lu_\d+/Relu", n)][0]
            block = separable(
                sep_prefix + "/separable_conv2d/ReadVariableOp",
                sep_prefix + "/separable_conv2d/ReadVariableOp_1",
                sep_prefix + "/BiasAdd/ReadVariableOp",
                relu,
                cur,
            )
            final = SameConv2d(
                _dense_weight(w(conv_prefix + "/Conv2D/ReadVariableOp")),
                _t(w(conv_prefix + "/BiasAdd/ReadVariableOp")),
                1,
                1,
                "",
                cur,
            )
            heads.append(nn.Sequential(block, final))
        self.heatmap_head, self.center_head = heads[0], heads[1]
        # The decoder reads the regression head at one cell (the person centre) and the offset head at 17 cells
        # (one per keypoint): these two are evaluated at those cells only (PointHead), not over the whole grid.
        self.regress_head, self.offset_head = PointHead(heads[2]), PointHead(heads[3])
        self.out_size = cur

    def backbone_blocks(self) -> list[InvertedResidual]:
        """The 17 backbone blocks in order, across the four stages."""
        return cast("list[InvertedResidual]", [*self.stage4, *self.stage8, *self.stage16, *self.stage32])

    def pad_relu6_widths(self, multiple: int) -> MoveNetTrunk:
        """Widen every ReLU6 output (stem, each block's expansion and depthwise, Conv_1) to a multiple of
        `multiple` channels; block outputs, the FPN and the heads are unchanged, and so are the results."""
        blocks = self.backbone_blocks()
        first = blocks[0]
        if isinstance(first.expand, nn.Identity):
            _widen([self.stem, first.depthwise, first.project], multiple)
        for block in blocks:
            if isinstance(block.expand, SameConv2d):
                _widen([block.expand, block.depthwise, block.project], multiple)
        _widen([self.head_conv, self.fpn_top], multiple)
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> heatmap logits [B,17,G,G], center logits [B,1,G,G], FPN features [B,C,G,G] (for the PointHeads)."""
        x = self.stem(x)
        c4 = self.stage4(x)
        c8 = self.stage8(c4)
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        p = self.fpn_top(self.head_conv(c32))
        p = self.fpn4(self.fpn8(self.fpn16(p, c16), c8), c4)
        return self.heatmap_head(p), self.center_head(p), p


class MoveNet(nn.Module):
    """int32/uint8 NHWC image batch [B, S, S, 3] (RGB 0..255) -> keypoints [B, 17, 3] (y, x, score) in 0..1."""

    # buffers (register_buffer)
    mean: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor
    center_weight: torch.Tensor

    def __init__(self, graph: GraphModel):
        super().__init__()
        shape = graph.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            raise ModelFileError(graph.json_path, f"unexpected input shape {shape}")
        self.input_size = shape[1]
        w = graph.weight
        self.register_buffer("mean", _t(w(SPC + "Reshape").reshape(1, 1, 1, 3)))  # NHWC, like the input
        self.register_buffer("scale", _t(w(SPC + "truediv").reshape(1, 1, 1, 3)))
        self.register_buffer("shift", _t(w(SPC + "sub_1/y").reshape(1, 1, 1, 1)))
        trunk = MoveNetTrunk(graph, self.input_size)
        self.trunk: MoveNetTrunk | ScriptModule = trunk
        self.decode_constants = DecodeConstants.from_graph(graph)
        if self.decode_constants.grid != trunk.out_size:
            raise ModelFileError(
                graph.json_path, f"decoder grid {self.decode_constants.grid} != head size {trunk.out_size}"
            )
        self.register_buffer("center_weight", self.decode_constants.center_weight_nchw())
        self.regress_head = trunk.regress_head  # kept when the trunk is swapped for a TorchScript graph
        self.offset_head = trunk.offset_head
        self.eval()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[B, S, S, 3] integer RGB -> [B, 3, S, S] float in channels_last memory, as the graph computes it:
        (x - mean) * scale - 1 with the graph's float16 constants (scale = 0.007843017578125, not 1/127.5)."""
        x = images.to(torch.float32, copy=True)  # a new NHWC tensor: normalize it in place
        x.sub_(self.mean).mul_(self.scale).sub_(self.shift)
        return x.permute(0, 3, 1, 2)  # NCHW view of NHWC memory = channels_last, no copy

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        heatmap, center, features = self.trunk(self.normalize(images))
        features = features.contiguous()

        def regress_at(b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return self.regress_head.at(features, b, y, x)

        def offset_at(b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return self.offset_head.at(features, b, y, x)

        return decode_heads(heatmap, center, regress_at, offset_at, self.center_weight, self.decode_constants)

    def optimize_for_cpu(self) -> MoveNet:
        """Swap the trunk for a frozen TorchScript graph with oneDNN (MKL-DNN) ops: prepacked weights, blocked
        layouts, in-place ReLU6. torch 1.13's eager conv2d sends small 1x1 convs (batch 1, or 1 thread) to a
        slow THNN path; this graph calls oneDNN for every conv. Scripted, not traced: no slow eager run at load,
        and any batch size. The graph is built from a copy whose ReLU6 widths are padded (ONEDNN_CHANNEL_BLOCK),
        then compared with the eager trunk on one probe image; where they disagree the eager trunk stays (slow,
        right) and a warning says why."""
        if not torch.backends.mkldnn.is_available() or isinstance(self.trunk, ScriptModule):
            return self
        eager = self.trunk.eval()
        with torch.no_grad():
            widened = copy.deepcopy(eager).pad_relu6_widths(ONEDNN_CHANNEL_BLOCK)
            try:
                optimized = onednn_graph(widened)
            except Exception as exc:  # an API torch dropped or a graph it cannot build: the eager trunk serves
                log.warning(
                    "no oneDNN graph for the MoveNet trunk on torch %s (%s: %s); keeping the eager trunk",
                    torch.__version__,
                    type(exc).__name__,
                    exc,
                )
                return self
            err = trunk_disagreement(eager, optimized, self.input_size)
        if err > OPTIMIZED_TRUNK_TOLERANCE:
            log.warning(
                "the oneDNN graph of the MoveNet trunk disagrees with the eager trunk by %.3g on a probe "
                "(torch %s); keeping the eager trunk (right, slower)",
                err,
                torch.__version__,
            )
            return self
        self.trunk = optimized
        return self


def onednn_graph(trunk: nn.Module) -> ScriptModule:
    """script → freeze → optimize_for_inference. Still the fastest CPU path on torch 2.x (BENCHMARKS.md, "torch
    1.13 and 2.x"), where these calls warn that they are deprecated: the warning is expected and not repeated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=FutureWarning)
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(trunk)))  # pyright: ignore[reportPrivateImportUsage]


def trunk_disagreement(a: nn.Module, b: nn.Module, size: int) -> float:
    """Largest absolute difference between two trunks' outputs on a fixed pseudo-random normalized image."""
    probe = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    probe = probe.contiguous(memory_format=torch.channels_last)
    return max(float((x - y).abs().max()) for x, y in zip(a(probe), b(probe)))
