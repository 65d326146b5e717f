"""BlazePose's two networks (the person detector and a landmark model) in PyTorch, from the TF.js graphs.

Each graph is translated op by op into a torch.fx module (graph_torch.py); only the outputs tfjs-models reads
are built (the landmark model's segmentation branch, its decoder up to 128x128 and 256x256, is left out). On
CPU each module is then frozen into a TorchScript graph of oneDNN ops, as MoveNet's trunk is (see
movenet.network.onednn_graph), and checked against the eager module on a probe at load: where they disagree,
the eager module stays and a warning says so.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.backends.mkldnn
from torch import nn

from ..movenet.network import ScriptModule, onednn_graph
from ..movenet.tfjs_graph import GraphModel, ModelFileError
from .graph_torch import graph_module

log = logging.getLogger(__name__)

DETECTOR_OUTPUTS = ("person",)
LANDMARK_OUTPUTS = ("ld_3d", "output_poseflag", "activation_heatmap", "world_3d")
# Largest difference allowed between the oneDNN graph and the eager module on the probe, relative to the output's
# magnitude (at least 1): oneDNN's rounding differs by ~1e-6 of it, a wrong kernel by far more.
OPTIMIZED_TOLERANCE = 1e-3


@dataclass
class LandmarkOutputs:
    """A batch of landmark-model outputs, numpy float32."""

    landmarks: np.ndarray  # [B, 195] (ld_3d)
    pose_score: np.ndarray  # [B] (output_poseflag, a sigmoid)
    heatmap: np.ndarray  # [B, 39, 64, 64] (activation_heatmap, channel first)
    world: np.ndarray  # [B, 117] (world_3d)


class GraphNet(nn.Module):
    """One translated graph: NHWC float images [B, S, S, 3] in, the graph's outputs out (4-D ones NCHW)."""

    def __init__(self, graph: GraphModel, outputs: tuple[str, ...], kind: str):
        super().__init__()
        shape = graph.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
            raise ModelFileError(graph.json_path, f"unexpected input shape {shape}")
        self.input_size = shape[1]
        self.kind = kind
        self.body: nn.Module = graph_module(graph, outputs)
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.body(images.permute(0, 3, 1, 2))  # an NCHW view of NHWC memory: channels_last, no copy

    def optimize_for_cpu(self) -> GraphNet:
        """Swap the body for a frozen oneDNN TorchScript graph, where that agrees with the eager body."""
        if not torch.backends.mkldnn.is_available() or isinstance(self.body, ScriptModule):
            return self
        eager = self.body
        with torch.no_grad(), warnings.catch_warnings():
            # torch.fx.GraphModule's own __init__ annotates an empty dict, which TorchScript's checker warns about
            warnings.filterwarnings("ignore", message=r".*instance-level annotations on empty non-base types")
            try:
                optimized = onednn_graph(copy.deepcopy(eager))
            except Exception as exc:  # an API torch dropped or a graph it cannot build: the eager body serves
                log.warning(
                    "no oneDNN graph for the BlazePose %s (%s: %s); keeping the eager one",
                    self.kind,
                    type(exc).__name__,
                    exc,
                )
                return self
            err = disagreement(eager, optimized, self.input_size, -1.0 if self.kind == "detector" else 0.0)
        if err > OPTIMIZED_TOLERANCE:
            log.warning(
                "the oneDNN graph of the BlazePose %s disagrees with the eager one by %.3g (relative) on a probe "
                "(torch %s); keeping the eager one (right, slower)",
                self.kind,
                err,
                torch.__version__,
            )
            return self
        self.body = cast(nn.Module, optimized)
        return self


def disagreement(a: nn.Module, b: nn.Module, size: int, low: float) -> float:
    """Largest difference of two modules' outputs on a fixed pseudo-random image with values low..1, relative to
    each output's magnitude (at least 1)."""
    probe = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(0)) * (1 - low) + low
    x = probe.permute(0, 3, 1, 2)
    return max(float((p - q).abs().max()) / max(1.0, float(p.abs().max())) for p, q in zip(a(x), b(x)))


class BlazePoseNets:
    """The detector and one landmark model on one device."""

    def __init__(self, detector: GraphModel, landmarks: GraphModel, device: torch.device):
        self.detector = GraphNet(detector, DETECTOR_OUTPUTS, "detector").to(device)
        self.landmarks = GraphNet(landmarks, LANDMARK_OUTPUTS, "landmarks").to(device)
        self.device = device
        if self.detector.input_size != 224 or self.landmarks.input_size != 256:
            raise ModelFileError(
                landmarks.json_path,
                f"inputs are {self.detector.input_size} / {self.landmarks.input_size}, expected 224 / 256",
            )

    def optimize_for_cpu(self) -> BlazePoseNets:
        self.detector.optimize_for_cpu()
        self.landmarks.optimize_for_cpu()
        return self

    def _tensor(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)

    def detect(self, inputs: np.ndarray) -> np.ndarray:
        """[B, 224, 224, 3] float32 (-1..1) -> [B, 2254, 13]."""
        with torch.inference_mode():
            (out,) = self.detector(self._tensor(inputs))
            return out.float().cpu().numpy()

    def landmark(self, inputs: np.ndarray) -> LandmarkOutputs:
        """[B, 256, 256, 3] float32 (0..1) -> the landmark model's four outputs."""
        with torch.inference_mode():
            ld, flag, heatmap, world = self.landmarks(self._tensor(inputs))
            return LandmarkOutputs(
                ld.float().cpu().numpy(),
                flag.float().cpu().numpy().reshape(-1),
                heatmap.float().cpu().numpy(),
                world.float().cpu().numpy(),
            )
