"""MoveNet network built from the TF.js graph: TF SAME padding, parity with TF.js outputs, batching.

The reference outputs (tests/fixtures/movenet/tfjs-MODEL.json) were produced by TensorFlow.js (WASM backend)
on the committed inputs (inputs-MODEL.u8.gz); pose-service/parity/movenet-parity.test.ts re-runs TF.js live.
"""

import copy
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posepool_worker.backends.movenet import network
from posepool_worker.backends.movenet.backend import model_dir
from posepool_worker.backends.movenet.network import MoveNet, SameConv2d, same_padding, trunk_disagreement
from posepool_worker.backends.movenet.tfjs_graph import load_graph_model

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "movenet"
MODELS = ("movenet-thunder", "movenet-lightning")
COORD_TOL, SCORE_TOL = 0.002, 0.01  # the parity tolerances


def fixture(model):
    index = json.loads((FIXTURES / f"index-{model}.json").read_text())
    size = index["inputSize"]
    raw = gzip.decompress((FIXTURES / f"inputs-{model}.u8.gz").read_bytes())
    inputs = np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3).astype(np.int32)
    ref = np.array(json.loads((FIXTURES / f"tfjs-{model}.json").read_text())["outputs"], np.float32)
    return inputs, ref, index["entries"]


@pytest.fixture(scope="module", params=MODELS)
def nets(request):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # restored for the tests that follow
    eager = MoveNet(load_graph_model(model_dir(REPO) / f"{request.param}.json"))
    yield request.param, eager, copy.deepcopy(eager).optimize_for_cpu()
    torch.set_num_threads(threads)


def test_same_padding_is_tensorflows():
    assert same_padding(192, 3, 2) == (0, 1)  # even input, stride 2: nothing before, one after
    assert same_padding(191, 3, 2) == (1, 1)
    assert same_padding(48, 3, 1) == (1, 1)
    assert same_padding(48, 1, 1) == (0, 0)


@pytest.mark.parametrize("groups", [1, 8])
def test_strided_conv_equals_explicit_asymmetric_pad_and_differs_from_symmetric(groups):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16)
    w = torch.randn(8, 8 // groups, 3, 3)
    b = torch.randn(8)
    conv = SameConv2d(w, b, stride=2, groups=groups, act="", in_size=16)
    with torch.no_grad():
        ours = conv(x)
        tf_same = F.conv2d(F.pad(x, (0, 1, 0, 1)), w, b, stride=2, groups=groups)
        symmetric = F.conv2d(x, w, b, stride=2, padding=1, groups=groups)
    assert ours.shape == (2, 8, 8, 8)
    assert torch.allclose(ours, tf_same, atol=1e-5)
    assert not torch.allclose(ours, symmetric, atol=1e-2)  # the trap the 4x4 kernel avoids


def test_relu6_is_clamped():
    conv = SameConv2d(torch.ones(1, 1, 1, 1) * 10, torch.zeros(1), 1, 1, "relu6", 4)
    with torch.no_grad():
        y = conv(torch.tensor([[[[-1.0, 0.3, 1.0, 2.0]]]]))
    assert y.flatten().tolist() == pytest.approx([0.0, 3.0, 6.0, 6.0])


def test_outputs_match_tfjs_reference(nets):
    model, eager, optimized = nets
    inputs, ref, entries = fixture(model)
    assert len(entries) >= 5 and {e["kind"] for e in entries} == {"letterbox", "crop"}
    with torch.inference_mode():
        # The eager module (the CUDA path) is slow on CPU with one thread (torch 1.13's THNN 1x1 convs): 2 inputs.
        for name, net, n in (("eager", eager, 2), ("optimized", optimized, len(inputs))):
            out = net(torch.from_numpy(inputs[:n])).numpy()
            coord = np.abs(out[..., :2] - ref[:n, :, :2]).max()
            score = np.abs(out[..., 2] - ref[:n, :, 2]).max()
            print(f"{model} {name}: max |dy|,|dx| {coord:.2e}, max |dscore| {score:.2e}")
            assert coord <= COORD_TOL and score <= SCORE_TOL, (name, coord, score)
            assert coord < 1e-4 and score < 1e-4  # what the implementation actually achieves (float rounding)


def test_batch_equals_one_by_one(nets):
    model, _, optimized = nets
    inputs, _, _ = fixture(model)
    with torch.inference_mode():
        batch = optimized(torch.from_numpy(inputs[:4])).numpy()
        single = np.concatenate([optimized(torch.from_numpy(inputs[i : i + 1])).numpy() for i in range(4)])
    assert np.abs(batch - single).max() < 1e-5


def test_relu6_widths_are_padded_to_the_onednn_block_with_the_same_results(nets):
    model, eager, _ = nets
    widened = copy.deepcopy(eager.trunk).pad_relu6_widths(16)
    convs = [m for m in widened.modules() if isinstance(m, SameConv2d)]
    relu6 = [c for c in convs if c.act == "relu6"]
    assert relu6 and all(c.weight.shape[0] % 16 == 0 for c in relu6)
    if model == "movenet-thunder":  # x1.75: the stem's 56 and expansions such as 168 were not multiples of 16
        assert eager.trunk.stem.weight.shape[0] == 56 and widened.stem.weight.shape[0] == 64
    for c in convs:  # every conv still takes what the layer before it gives
        assert c.groups == 1 or c.groups == c.weight.shape[0]
    with torch.no_grad():
        assert trunk_disagreement(eager.trunk, widened, eager.input_size) < 1e-4


def test_an_optimized_trunk_that_disagrees_with_eager_is_not_used(monkeypatch, caplog):
    """The load-time check, with a TEST DOUBLE for a wrong oneDNN graph (the real one was torch 1.13's ReLU6 on
    AVX-512): the eager trunk stays and a warning names the disagreement."""

    class WrongGraph(torch.nn.Module):
        def __init__(self, trunk):
            super().__init__()
            self.trunk = trunk

        def forward(self, x):
            heatmap, center, features = self.trunk(x)
            return heatmap + 1.0, center, features

    monkeypatch.setattr(network.torch.jit, "optimize_for_inference", WrongGraph)
    net = MoveNet(load_graph_model(model_dir(REPO) / "movenet-lightning.json"))
    eager = net.trunk
    with caplog.at_level("WARNING", logger=network.log.name):
        assert net.optimize_for_cpu().trunk is eager
    assert "disagrees with the eager trunk by 1" in caplog.text


def test_architecture_read_from_the_graph(nets):
    model, eager, _ = nets
    assert eager.input_size == {"movenet-thunder": 256, "movenet-lightning": 192}[model]
    assert eager.decode_constants.grid == eager.input_size // 4
    trunk = eager.trunk
    blocks = trunk.backbone_blocks()
    assert len(blocks) == 17  # expanded_conv + block_1..16
    assert [b.depthwise.stride[0] for b in blocks].count(2) == 4
    assert sum(b.residual for b in blocks) == 10


def test_point_heads_equal_the_dense_heads_at_their_cells(nets):
    _, eager, _ = nets
    g = eager.decode_constants.grid
    channels = eager.regress_head.w1.shape[0]
    features = torch.relu(torch.randn(2, channels, g, g))
    b = torch.tensor([0, 0, 1, 1, 1])
    y = torch.tensor([0, g - 1, 5, g // 2, g - 1])  # borders included (the SAME zero padding)
    x = torch.tensor([0, 3, g - 1, g // 2, 0])
    with torch.no_grad():
        for head in (eager.regress_head, eager.offset_head):
            dense = head(features)[b, :, y, x]
            assert torch.allclose(head.at(features, b, y, x), dense, atol=1e-4)


def test_a_torch_without_the_jit_graph_api_keeps_the_eager_trunk(monkeypatch, caplog):
    """torch 2.x deprecates torch.jit.freeze / optimize_for_inference: where a torch drops them, the worker still
    loads and serves with the eager trunk, and says why."""
    monkeypatch.delattr(network.torch.jit, "optimize_for_inference")
    net = MoveNet(load_graph_model(model_dir(REPO) / "movenet-lightning.json"))
    eager = net.trunk
    with caplog.at_level("WARNING", logger=network.log.name):
        assert net.optimize_for_cpu().trunk is eager
    assert "no oneDNN graph for the MoveNet trunk" in caplog.text and "AttributeError" in caplog.text


def test_building_the_graph_raises_no_deprecation_warning():
    """The graph is built on purpose on torch 2.x (the fastest CPU path measured): its deprecation warnings are
    expected and kept out of every worker's log; any other warning still shows."""
    import warnings

    net = MoveNet(load_graph_model(model_dir(REPO) / "movenet-lightning.json"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        net.optimize_for_cpu()
    assert not [w for w in seen if "deprecated" in str(w.message)], [str(w.message) for w in seen]
