"""A TF.js graph model (tfjs_graph.GraphModel) rebuilt as a torch.fx GraphModule of ordinary torch ops.

BlazePose comes as four graphs (the detector and three landmark models) that share one small set of ops but
not one architecture, so instead of a hand-written module per graph (as MoveNet has) the graph itself is
translated, node by node, into torch: the result is plain PyTorch (nn.Conv2d-style modules and torch
functions in an fx graph), scriptable, freezable for oneDNN like MoveNet's trunk, and as fast as a
hand-written module, because the graph's own ops are the network.

Layout: the graph is NHWC; the module is NCHW (channels_last memory in practice). Every 4-D value is kept
NCHW; ops whose meaning depends on the axis order (Reshape, ConcatV2, DepthToSpace, channel Pad) are
translated for it, and an NCHW value leaving as a non-4-D output is permuted back to NHWC first.

The ops the BlazePose graphs use, and their translation:
- ``_FusedConv2D`` / ``Conv2D`` / ``FusedDepthwiseConv2dNative`` / ``DepthwiseConv2dNative``: TFConv2d
  (filter [kh, kw, in, out] -> [out, in, kh, kw]; depthwise [kh, kw, C, 1] -> [C, 1, kh, kw], groups C),
  bias from ``fused_ops[0] == BiasAdd``, optional Relu / Relu6. TF ``SAME`` padding is asymmetric (one more
  row/col after for a stride-2 conv on an even size): the kernel grows by a zero row/col in front instead
  of copying a padded input (see movenet.network.SameConv2d). ``VALID`` convs fed by a spatial zero ``Pad``
  absorb it.
- ``Pad``: spatial pads folded into the VALID convs that read them; anything else (the heavy model pads
  channels with zeros) is F.pad.
- ``AddV2``, ``Relu``, ``Relu6``, ``Sigmoid``, ``Identity``: as they are.
- ``MaxPool`` (2x2, stride 2, VALID): F.max_pool2d.
- ``ResizeBilinear`` (half_pixel_centers, not align_corners; exact 2x here): F.interpolate bilinear with
  align_corners=False, which is the same sampling.
- ``DepthToSpace`` (NHWC, "DCR": depth index = (i * bs + j) * C + c): view/permute/reshape.
- ``Reshape``: the batch stays the first dimension, the rest is the target shape's (the detector computes its
  target with Shape/StridedSlice/Pack from the batch; those three ops are read as "the batch" and never run).
- ``ConcatV2``: along the axis, mapped to NCHW for 4-D values.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.graph import Graph as FxGraph
from torch.fx.graph_module import GraphModule
from torch.fx.node import Node as FxNode

from ..conv import Conv2dAct
from ..movenet.network import same_padding
from ..movenet.tfjs_graph import GraphModel, ModelFileError, Node

CONV_OPS = {"_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"}
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2, -4: 0}
SHAPE_OPS = {"Shape", "StridedSlice", "Pack"}  # only ever feed a Reshape's target shape here


class TFConv2d(Conv2dAct):
    """A dense or depthwise conv of the graph: explicit (symmetric) padding, bias and an optional Relu / Relu6."""


def tf_same_conv_padding(
    weight: torch.Tensor, size: tuple[int, int], stride: int
) -> tuple[torch.Tensor, tuple[int, int]]:
    """TF SAME padding for a conv on an input of ``size`` (h, w) -> (weight, symmetric padding): where SAME
    pads one more after than before (stride 2, even size), the kernel gets a zero first row/col and the padding
    is the larger of the two on both sides (the same arithmetic, no padded copy of the input)."""
    kh, kw = weight.shape[-2:]
    (top, bottom), (left, right) = same_padding(size[0], kh, stride), same_padding(size[1], kw, stride)
    if bottom == top + 1:
        weight = F.pad(weight, (0, 0, 1, 0))
        top = bottom
    if right == left + 1:
        weight = F.pad(weight, (1, 0, 0, 0))
        left = right
    if top != bottom or left != right:
        raise ValueError(f"unsupported SAME padding {top}/{bottom}, {left}/{right}")
    return weight, (top, left)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _base(name: str) -> str:
    return name.split(":")[0].lstrip("^")


class _Builder:
    """Walks the graph from the wanted outputs and emits fx nodes, running each new op on a probe tensor so that
    every value's shape is known (SAME padding and the axis mappings need them)."""

    def __init__(self, graph: GraphModel, input_shape: Sequence[int]):
        self.g = graph
        self.fx = FxGraph()
        self.root = nn.Module()
        self.values: dict[str, FxNode] = {}  # tf node name -> fx node
        self.probe: dict[str, torch.Tensor] = {}  # tf node name -> its value on the probe input
        self.nchw: dict[str, bool] = {}
        self.input_shape = tuple(input_shape)  # NHWC
        self.folded_pads: dict[str, tuple[int, int]] = {}  # Pad node -> the (h, w) padding its VALID convs take
        self.count = 0

    def fail(self, node: Node, why: str) -> ModelFileError:
        return ModelFileError(self.g.json_path, f"{node.name} ({node.op}): {why}")

    def module(self, prefix: str, mod: nn.Module) -> str:
        self.count += 1
        name = f"{prefix}{self.count}"
        self.root.add_module(name, mod)
        return name

    # -- the walk ------------------------------------------------------------------------------------------

    def order(self, outputs: Sequence[str]) -> list[str]:
        """The nodes the outputs need, in dependency order (each after its inputs), consts and shape ops left out."""
        seen: set[str] = set()
        out: list[str] = []
        stack: list[tuple[str, bool]] = [(o, False) for o in reversed(outputs)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                out.append(name)
                continue
            if name in seen:
                continue
            seen.add(name)
            node = self.g.node(name)
            if node.op == "Const" or node.op in SHAPE_OPS:
                continue
            stack.append((name, True))
            inputs = node.inputs[:2] if node.op == "Reshape" else node.inputs  # a Reshape's shape is read, not run
            for i in reversed(inputs):
                if not i.startswith("^"):
                    stack.append((_base(i), False))
        return out

    def build(self, outputs: Sequence[str]) -> GraphModule:
        for name in self.order(outputs):
            node = self.g.node(name)
            self.emit(node)
        results = []
        for name in outputs:
            value = self.values[name]
            if self.nchw[name] and self.probe[name].dim() != 4:
                raise ModelFileError(self.g.json_path, f"output {name} is not 4-D but laid out NCHW")
            results.append(value)
        self.fx.output(tuple(results))
        gm = GraphModule(self.root, self.fx)
        gm.eval()
        return gm

    def arg(self, name: str) -> tuple[FxNode, torch.Tensor, bool]:
        name = _base(name)
        if name not in self.values:
            raise ModelFileError(self.g.json_path, f"{name} is used before it is computed")
        return self.values[name], self.probe[name], self.nchw[name]

    def set(self, node: Node, value: FxNode, probe: torch.Tensor, nchw: bool) -> None:
        self.values[node.name] = value
        self.probe[node.name] = probe
        self.nchw[node.name] = nchw

    def call_module(self, node: Node, prefix: str, mod: nn.Module, inputs: Sequence[FxNode], probes, nchw: bool):
        target = self.module(prefix, mod)
        with torch.no_grad():
            probe = mod(*probes)
        self.set(node, self.fx.call_module(target, tuple(inputs)), probe, nchw)

    def call_function(self, node: Node, fn, args: tuple, kwargs: dict, probe_args: tuple, nchw: bool):
        with torch.no_grad():
            probe = fn(*probe_args, **kwargs)
        self.set(node, self.fx.call_function(fn, args, kwargs), probe, nchw)

    # -- the ops -------------------------------------------------------------------------------------------

    def emit(self, node: Node) -> None:
        op = node.op
        if op == "Placeholder":
            value = self.fx.placeholder("x")
            b, h, w, c = self.input_shape
            probe = torch.zeros(1 if b < 1 else b, c, h, w)
            self.set(node, value, probe, True)
        elif op in CONV_OPS:
            self.conv(node)
        elif op == "Pad":
            self.pad(node)
        elif op == "AddV2":
            (a, pa, na), (b, pb, nb) = self.arg(node.inputs[0]), self.arg(node.inputs[1])
            if na != nb or pa.shape != pb.shape:
                raise self.fail(node, f"adds {tuple(pa.shape)} and {tuple(pb.shape)}")
            self.call_function(node, operator.add, (a, b), {}, (pa, pb), na)
        elif op in ("Relu", "Relu6", "Sigmoid"):
            x, px, nx = self.arg(node.inputs[0])
            if op == "Relu":
                self.call_function(node, F.relu, (x,), {}, (px,), nx)
            elif op == "Relu6":
                self.call_function(node, F.hardtanh, (x,), {"min_val": 0.0, "max_val": 6.0}, (px,), nx)
            else:
                self.call_function(node, torch.sigmoid, (x,), {}, (px,), nx)
        elif op == "Identity":
            x, px, nx = self.arg(node.inputs[0])
            self.set(node, x, px, nx)
        elif op == "MaxPool":
            self.max_pool(node)
        elif op == "ResizeBilinear":
            self.resize(node)
        elif op == "DepthToSpace":
            self.depth_to_space(node)
        elif op == "Reshape":
            self.reshape(node)
        elif op == "ConcatV2":
            self.concat(node)
        else:
            raise self.fail(node, "unsupported op")

    def conv(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        if not nx or px.dim() != 4:
            raise self.fail(node, "input is not an image tensor")
        w = self.g.weight(_base(node.inputs[1]))
        depthwise = "Depthwise" in node.op
        if depthwise:
            if w.shape[3] != 1:
                raise self.fail(node, f"channel multiplier {w.shape[3]}")
            weight = _t(w).permute(2, 3, 0, 1).contiguous()
            groups = weight.shape[0]
        else:
            weight = _t(w).permute(3, 2, 0, 1).contiguous()
            groups = 1
        fused = node.attr_strs("fused_ops")
        bias = None
        act = ""
        if fused:
            if fused[0] != "BiasAdd" or len(fused) > 2 or len(node.inputs) < 3:
                raise self.fail(node, f"unsupported fused ops {fused}")
            bias = _t(self.g.weight(_base(node.inputs[2])))
            if len(fused) == 2:
                if fused[1] not in ("Relu", "Relu6"):
                    raise self.fail(node, f"unsupported fused activation {fused[1]}")
                act = fused[1].lower()
        strides = node.attr_ints("strides") or [1, 1, 1, 1]
        dilations = node.attr_ints("dilations") or [1, 1, 1, 1]
        if strides[1] != strides[2] or any(d != 1 for d in dilations) or node.attr_ints("explicit_paddings"):
            raise self.fail(node, f"unsupported strides {strides} / dilations {dilations}")
        stride = strides[1]
        padding_mode = node.attr_str("padding")
        size = (px.shape[2], px.shape[3])
        if padding_mode == "SAME":
            weight, padding = tf_same_conv_padding(weight, size, stride)
        elif padding_mode == "VALID":
            padding = (0, 0)
            src = self.g.node(_base(node.inputs[0]))
            if src.op == "Pad" and src.name in self.folded_pads:
                padding = self.folded_pads[src.name]
                x, px, _ = self.arg(src.inputs[0])
        else:
            raise self.fail(node, f"unsupported padding {padding_mode}")
        conv = TFConv2d(weight, bias, stride, padding, groups, act)
        self.call_module(node, "conv", conv, [x], (px,), True)

    def pad(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        pads = self.g.weight(_base(node.inputs[1])).astype(int).tolist()
        if not nx or len(pads) != 4 or pads[0] != [0, 0]:
            raise self.fail(node, f"unsupported paddings {pads}")
        (top, bottom), (left, right), (c0, c1) = pads[1], pads[2], pads[3]
        consumers = self.g.consumers(node.name)
        spatial_only = (c0, c1) == (0, 0) and top == bottom and left == right
        if spatial_only and consumers and all(c.op in CONV_OPS and c.attr_str("padding") == "VALID" for c in consumers):
            # the VALID convs reading it pad by themselves; the Pad itself is never computed
            self.folded_pads[node.name] = (top, left)
            self.set(node, x, px, nx)
            return
        self.call_function(
            node, F.pad, (x, (left, right, top, bottom, c0, c1)), {}, (px, (left, right, top, bottom, c0, c1)), True
        )

    def max_pool(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        k, s = node.attr_ints("ksize"), node.attr_ints("strides")
        if not nx or node.attr_str("padding") != "VALID" or k[1] != k[2] or s[1] != s[2] or k[0] != 1 or k[3] != 1:
            raise self.fail(node, f"unsupported pooling {k} / {s}")
        self.call_function(node, F.max_pool2d, (x, k[1], s[1]), {}, (px, k[1], s[1]), True)

    def resize(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        size = [int(v) for v in self.g.weight(_base(node.inputs[1])).ravel()]
        if not nx or node.attr_bool("align_corners") or not node.attr_bool("half_pixel_centers"):
            raise self.fail(node, "only half-pixel-centre bilinear resizing is supported")
        kwargs = {"size": (size[0], size[1]), "mode": "bilinear", "align_corners": False}
        self.call_function(node, F.interpolate, (x,), kwargs, (px,), True)

    def depth_to_space(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        bs = int(node.attr.get("block_size", {}).get("i", 0))
        if not nx or node.attr_str("data_format") not in (None, "NHWC") or bs < 1:
            raise self.fail(node, "unsupported DepthToSpace")
        self.call_function(node, depth_to_space_nchw, (x, bs), {}, (px, bs), True)

    def reshape(self, node: Node) -> None:
        x, px, nx = self.arg(node.inputs[0])
        shape_src = _base(node.inputs[1])
        if shape_src in self.g.weights:
            target = [int(v) for v in self.g.weight(shape_src).ravel()]
        else:
            target = self.shape_of(self.g.node(shape_src))
        if nx:
            x = self.fx.call_method("permute", (x, (0, 2, 3, 1)))
            px = px.permute(0, 2, 3, 1)
        rest = tuple(target[1:])
        per_sample = int(np.prod(px.shape[1:]))
        known = int(np.prod([d for d in rest if d != -1])) if rest else 1
        if (-1 not in rest and known != per_sample) or (target[0] not in (-1, 0) and -1 in rest):
            raise self.fail(node, f"target {target} does not keep the batch first")
        batch = self.fx.call_function(operator.getitem, (self.fx.call_method("size", (x,)), 0))
        value = self.fx.call_method("reshape", (x, (batch, *rest)))
        with torch.no_grad():
            probe = px.reshape(px.shape[0], *rest)
        self.set(node, value, probe, False)

    def shape_of(self, pack: Node) -> list[int]:
        """A Reshape target computed as Pack(StridedSlice(Shape(x)) = the batch, consts...): -1 for the batch."""
        if pack.op != "Pack":
            raise self.fail(pack, "a computed reshape target must be a Pack")
        out = []
        for i in pack.inputs:
            name = _base(i)
            if name in self.g.weights:
                out.append(int(self.g.weight(name).ravel()[0]))
                continue
            sl = self.g.node(name)
            begin = self.g.weights.get(_base(sl.inputs[1])) if sl.op == "StridedSlice" else None
            src = self.g.node(_base(sl.inputs[0])) if sl.op == "StridedSlice" else None
            if src is None or src.op != "Shape" or begin is None or int(begin.ravel()[0]) != 0:
                raise self.fail(pack, f"unsupported computed shape element {name}")
            out.append(0)  # the batch (dimension 0 of the shape)
        return out

    def concat(self, node: Node) -> None:
        parts = [self.arg(i) for i in node.inputs[:-1]]
        axis = int(self.g.weight(_base(node.inputs[-1])).ravel()[0])
        nchw = {p[2] for p in parts}
        if len(nchw) != 1:
            raise self.fail(node, "mixes layouts")
        layout_nchw = nchw.pop()
        if layout_nchw:
            axis = NHWC_TO_NCHW_AXIS[axis]
        values = [p[0] for p in parts]
        probes = [p[1] for p in parts]
        self.call_function(node, torch.cat, (values,), {"dim": axis}, (probes,), layout_nchw)


def depth_to_space_nchw(x: torch.Tensor, block: int) -> torch.Tensor:
    """TF DepthToSpace (NHWC, DCR order: depth index = (i * block + j) * C + c) on an NCHW tensor."""
    b, c, h, w = x.shape
    out_c = c // (block * block)
    x = x.reshape(b, block, block, out_c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, out_c, h * block, w * block)


def graph_module(graph: GraphModel, outputs: Sequence[str]) -> GraphModule:
    """The graph's ``outputs`` (signature keys, e.g. "ld_3d", or node names) as a GraphModule taking an NCHW float
    image batch [B, C, H, W] and returning a tuple in the order asked; 4-D outputs are NCHW."""
    names = [graph.outputs.get(o, o) for o in outputs]
    for o, n in zip(outputs, names):
        if n not in graph.nodes:
            raise ModelFileError(graph.json_path, f"graph has no output {o!r}")
    return _Builder(graph, graph.input_shape).build(names)
